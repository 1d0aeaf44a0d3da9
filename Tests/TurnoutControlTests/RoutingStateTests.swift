import Foundation
import Testing
import TurnoutRouting

@testable import TurnoutControl

private func member(_ text: String, weight: Int = 1) -> PoolMember {
    PoolMember(address: MemberAddress.parse(text)!, weight: weight)
}

private let initial = RoutingState(
    split: Split(partsPerMillion: [1_000_000, 0])!,
    pools: [
        Pool(name: "blue", members: [member("10.0.0.1:80"), member("10.0.0.2:80")]),
        Pool(name: "green", members: [member("10.0.1.1:80")]),
    ],
    overrides: OverridePolicy())

@Suite("RoutingState changes")
struct RoutingStateTests {
    @Test func aTransactionAppliesEverythingOrNothing() throws {
        let change = RoutingChange(
            split: Split(partsPerMillion: [900_000, 100_000])!,
            members: [
                MemberChange(pool: "blue", address: MemberAddress.parse("10.0.0.2:80")!, action: .drain),
                MemberChange(pool: "green", address: MemberAddress.parse("10.0.1.2:80")!, action: .add, weight: 3),
            ])
        let next = try initial.applying(change)
        #expect(next.split.partsPerMillion == [900_000, 100_000])
        #expect(next.pools[0].members[1].isDrained && !next.pools[0].members[1].takesTraffic)
        #expect(next.pools[1].members.map(\.weight) == [1, 3])

        // One bad member change refuses the whole transaction.
        var bad = change
        bad.members.append(MemberChange(pool: "green", address: MemberAddress.parse("10.9.9.9:80")!, action: .remove))
        #expect(throws: AdminError(404, "10.9.9.9:80 is not a member of green")) { try initial.applying(bad) }
    }

    @Test func membersCannotLeaveAPoolWithoutTakers() {
        let removeLast = RoutingChange(members: [MemberChange(pool: "green", address: MemberAddress.parse("10.0.1.1:80")!, action: .remove)])
        #expect((try? initial.applying(removeLast)) == nil)
        let addTwice = RoutingChange(members: [MemberChange(pool: "blue", address: MemberAddress.parse("10.0.0.1:80")!, action: .add)])
        #expect(throws: AdminError(409, "10.0.0.1:80 is already a member of blue")) { try initial.applying(addTwice) }
        let unknownPool = RoutingChange(members: [MemberChange(pool: "red", address: MemberAddress.parse("10.0.0.1:80")!, action: .drain)])
        #expect((try? initial.applying(unknownPool)) == nil)
        // Draining every member is allowed: the pool becomes unavailable and its share falls back.
        let drainAll = RoutingChange(members: [MemberChange(pool: "green", address: MemberAddress.parse("10.0.1.1:80")!, action: .drain)])
        let drained = try? initial.applying(drainAll)
        #expect(drained != nil)
        let withShare = try? drained!.applying(RoutingChange(split: Split(partsPerMillion: [500_000, 500_000])!))
        #expect(withShare?.poolsWithoutTakers == ["green"])
    }

    @Test func movedShareIsTheBucketsThatChangePool() {
        let all = Split(partsPerMillion: [1_000_000, 0])!
        let canary5 = Split(partsPerMillion: [950_000, 50_000])!
        let canary25 = Split(partsPerMillion: [750_000, 250_000])!
        #expect(all.movedParts(to: canary5) == 50_000)
        #expect(canary5.movedParts(to: canary25) == 200_000)
        #expect(canary25.movedParts(to: canary5) == 200_000)
        #expect(all.movedParts(to: Split(partsPerMillion: [0, 1_000_000])!) == 1_000_000)
        #expect(canary5.movedParts(to: canary5) == 0)
        let three = Split(partsPerMillion: [400_000, 300_000, 300_000])!
        let other = Split(partsPerMillion: [300_000, 300_000, 400_000])!
        // a loses [300k,400k) to b; b loses [600k,700k) to c.
        #expect(three.movedParts(to: other) == 200_000)
    }

    @Test func theDurableFormRoundTrips() throws {
        var state = try initial.applying(RoutingChange(
            split: Split(partsPerMillion: [999_999, 1])!,
            members: [MemberChange(pool: "blue", address: MemberAddress.parse("10.0.0.1:80")!, action: .drain)],
            overrides: OverridePolicy(header: "X-Pool", trustedNetworks: [IPNetwork(address: IPAddress(ipv4: 0x0A00_0000), prefixLength: 8)], token: "secret-token")))
        state.pools[1].members.append(member("[2001:db8::1]:8080", weight: 5))
        let config = TurnoutConfig(
            settings: .init(), pools: initial.pools, split: initial.split, logLevel: .info, sourcePath: "/etc/turnout.yaml")
        // Through the codec the state file uses.
        let bytes = try JSON.serialize(state.durableJSON(), sortedKeys: true)
        let parsed = try #require(try JSON.parse(bytes) as? [String: Any])
        let back = try RoutingState.fromDurableJSON(parsed, config: config)
        #expect(back == state)
    }

    @Test func aStateFileSurvivesAndRollsBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("turnout-state-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("state.json").path
        let config = TurnoutConfig(settings: .init(), pools: initial.pools, split: initial.split, logLevel: .info, sourcePath: dir.appendingPathComponent("t.yaml").path)
        let store = try StateStore(path: path, config: config, historyLimit: 2, refuseCorrupt: false)
        #expect(store.origin == .configuration && store.generation == 1)
        var s = store.state
        for (g, green) in [(2, 100_000), (3, 200_000), (4, 300_000)] as [(UInt64, UInt32)] {
            s.split = Split(partsPerMillion: [1_000_000 - green, green])!
            try store.commit(s, generation: g, isRollback: false)
        }
        #expect(store.history.count == 2)  // the limit
        let reopened = try StateStore(path: path, config: config, historyLimit: 2, refuseCorrupt: false)
        #expect(reopened.origin == .file && reopened.generation == 4 && reopened.state == store.state)
        #expect(reopened.history.map { $0.split.partsPerMillion[1] } == [100_000, 200_000])
        try reopened.commit(reopened.history.last!, generation: 5, isRollback: true)
        #expect(reopened.state.split.partsPerMillion[1] == 200_000 && reopened.history.count == 1)

        try Data("{\"version\": 1".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: StateFileError.self) { try StateStore(path: path, config: config, historyLimit: 2, refuseCorrupt: true) }
        let recovered = try StateStore(path: path, config: config, historyLimit: 2, refuseCorrupt: false)
        guard case .corrupt(_, let keptAs) = recovered.origin else {
            Issue.record("expected the corrupt file to be kept aside")
            return
        }
        #expect(FileManager.default.fileExists(atPath: keptAs) && !FileManager.default.fileExists(atPath: path))
        #expect(recovered.state == RoutingState(config: config) && recovered.generation == 1)
    }

    @Test func anEditedConfigurationWinsOnlyWhereItChanged() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("turnout-edit-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("state.json").path
        func config(_ state: RoutingState) -> TurnoutConfig {
            var c = TurnoutConfig(settings: .init(), pools: state.pools, split: state.split, logLevel: .info, sourcePath: dir.appendingPathComponent("t.yaml").path)
            c.routing.overrides = state.overrides
            return c
        }
        let first = try StateStore(path: path, config: config(initial), historyLimit: 5, refuseCorrupt: false)
        try first.persistCurrent()
        // An operator flips to green at run time.
        var flipped = first.state
        flipped.split = Split(partsPerMillion: [0, 1_000_000])!
        try first.commit(flipped, generation: 2, isRollback: false)

        // Restarted under the same configuration: the flip stands, nothing is edited.
        let same = try StateStore(path: path, config: config(initial), historyLimit: 5, refuseCorrupt: false)
        #expect(same.state == flipped && same.configurationEdits == nil)

        // The configuration's members of blue were edited: they replace the file's, the flip stands.
        var newMembers = initial
        newMembers.pools[0].members = [member("10.0.0.9:80")]
        let edited = try StateStore(path: path, config: config(newMembers), historyLimit: 5, refuseCorrupt: false)
        let edits = try #require(edited.configurationEdits)
        #expect(edits.parts == ["members of blue"])
        #expect(edits.state.split == flipped.split && edits.state.pools[0].members == newMembers.pools[0].members)
        #expect(edits.state.pools[1].members == flipped.pools[1].members)
        try edited.applyConfigurationEdits()
        #expect(edited.generation == 3 && edited.state == edits.state && edited.history.last == flipped)

        // Restarted again under that configuration: it is the baseline now, nothing more is edited.
        let again = try StateStore(path: path, config: config(newMembers), historyLimit: 5, refuseCorrupt: false)
        #expect(again.configurationEdits == nil && again.state == edits.state && again.generation == 3)

        // The configuration's split is edited (active: green -> a canary split): it wins.
        var canary = newMembers
        canary.split = Split(partsPerMillion: [900_000, 100_000])!
        let split = try StateStore(path: path, config: config(canary), historyLimit: 5, refuseCorrupt: false)
        #expect(split.configurationEdits?.parts == ["split"])
        #expect(split.configurationEdits?.state.split == canary.split)

        // Overrides edited.
        var header = newMembers
        header.overrides = OverridePolicy(header: "x-pool")
        let overrides = try StateStore(path: path, config: config(header), historyLimit: 5, refuseCorrupt: false)
        #expect(overrides.configurationEdits?.parts == ["overrides"])
        #expect(overrides.configurationEdits?.state.overrides.header == "x-pool")
    }

    @Test func aPoolAddedAtZeroLeavesTheSplitAsItWas() {
        var saved = initial
        saved.split = Split(partsPerMillion: [0, 1_000_000])!
        let baseline = initial.durableJSON()
        var configured = initial
        configured.pools.append(Pool(name: "canary", members: [member("10.0.2.1:80")]))
        configured.split = Split(partsPerMillion: [1_000_000, 0, 0])!
        saved.pools.append(configured.pools[2])
        saved.split = Split(partsPerMillion: [0, 1_000_000, 0])!
        let (state, edited) = RoutingState.reconciling(saved: saved, baseline: baseline, configured: configured)
        #expect(edited.isEmpty && state == saved)
    }

    @Test func aStateFileWithoutARecordOfItsConfigurationStands() throws {
        var saved = initial
        saved.split = Split(partsPerMillion: [0, 1_000_000])!
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("turnout-old-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("state.json").path
        // As an earlier version wrote it: no "configured".
        let object: [String: Any] = ["version": 1, "generation": 4, "state": saved.durableJSON(), "history": [Any]()]
        try Data(try JSON.serialize(object, sortedKeys: true)).write(to: URL(fileURLWithPath: path))
        var edited = initial
        edited.pools[0].members = [member("10.0.0.9:80")]
        let config = TurnoutConfig(settings: .init(), pools: edited.pools, split: edited.split, logLevel: .info, sourcePath: dir.appendingPathComponent("t.yaml").path)
        let store = try StateStore(path: path, config: config, historyLimit: 5, refuseCorrupt: false)
        #expect(store.configurationEdits == nil && store.state == saved && store.generation == 4)
    }
}
