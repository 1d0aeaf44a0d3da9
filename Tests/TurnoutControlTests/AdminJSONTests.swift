import Testing
import TurnoutRouting

@testable import TurnoutControl

/// Two pools, blue and green, with one member each.
private let pools = [
    Pool(name: "blue", members: [PoolMember(address: MemberAddress.parse("10.0.0.1:80")!, weight: 1)]),
    Pool(name: "green", members: [PoolMember(address: MemberAddress.parse("10.0.1.1:80")!, weight: 1)]),
]

/// The admin body `text` as the server reads it.
private func body(_ text: String) throws(AdminError) -> [String: Any] { try AdminJSON.object(Array(text.utf8)) }

/// The status of the `AdminError` that `body` throws, nil when it throws nothing, -1 for another error.
private func refusal(_ body: () throws -> Void) -> Int? {
    do {
        try body()
        return nil
    } catch let error as AdminError {
        return error.status
    } catch {
        return -1
    }
}

@Suite("Admin request values")
struct AdminJSONTests {
    @Test func anEmptyOrBlankBodyIsAnEmptyObject() throws {
        #expect(try body("").isEmpty)
        #expect(try body(" \r\n\t").isEmpty)
    }

    @Test(arguments: ["[]", "5", "\"x\"", "null", "{not json", #"{"a": 1,}"#, #"{"pool": "blue", "pool": "green"}"#])
    func aBodyThatIsNotOneUnambiguousObjectIsRefused(_ text: String) {
        #expect(refusal { _ = try body(text) } == 400)
    }

    @Test func invalidJSONIsRefusedWithTheReason() {
        let reason = #"the key "pool" appears twice in one object at byte 17"#
        #expect(throws: AdminError(400, "the body must be a JSON object: " + reason)) {
            try body(#"{"pool": "blue", "pool": "green"}"#)
        }
        #expect(throws: AdminError(400, "the body must be a JSON object")) { try body("[]") }
    }

    @Test func sharesOfZeroAndOneAreNumbersNotBooleans() throws {
        // JSONSerialization's NSNumber 0 and 1 were also `is Bool`, so these were refused as booleans.
        let split = try AdminJSON.split(try body(#"{"blue": 1, "green": 99}"#), pools: pools)
        #expect(split.partsPerMillion == [10_000, 990_000])
        let all = try AdminJSON.split(try body(#"{"blue": 0, "green": 100.0}"#), pools: pools)
        #expect(all.partsPerMillion == [0, 1_000_000])
    }

    @Test func sharesMayBeStringsIntegersOrDecimals() throws {
        let split = try AdminJSON.split(try body(#"{"blue": "89.5%", "green": 10.5}"#), pools: pools)
        #expect(split.partsPerMillion == [895_000, 105_000])
        #expect(try AdminJSON.percent(0.05, key: "k") == 500)
        #expect(try AdminJSON.percent(5.0, key: "k") == 50_000)
    }

    @Test func aBooleanOrNullShareIsRefused() {
        #expect(refusal { _ = try AdminJSON.split(try body(#"{"blue": true, "green": 0}"#), pools: pools) } == 400)
        #expect(refusal { _ = try AdminJSON.percent(false, key: "k") } == 400)
        #expect(refusal { _ = try AdminJSON.percent(JSON.null, key: "k") } == 400)
    }

    @Test func aWeightIsAWholeNumberAndNeverABoolean() throws {
        func weight(_ json: String) throws(AdminError) -> Int? {
            let member = #"{"pool": "blue", "address": "10.0.0.9:80", "action": "add", "weight": "# + json + "}"
            let object = try body(#"{"members": ["# + member + "]}")
            return try AdminJSON.change(object, pools: pools).members[0].weight
        }
        #expect(try weight("3") == 3)
        #expect(try weight("3.0") == 3)
        #expect(refusal { _ = try weight("2.5") } == 400)
        #expect(refusal { _ = try weight("true") } == 400)
        #expect(refusal { _ = try weight("\"3\"") } == 400)
        #expect(refusal { _ = try weight("null") } == 400)
    }

    @Test func aFlagIsTrueOrFalseOnly() throws {
        #expect(try AdminJSON.flag(nil, key: "dry_run") == false)
        #expect(try AdminJSON.flag(true, key: "dry_run") == true)
        #expect(try AdminJSON.flag(false, key: "dry_run") == false)
        // Taking 1 or "yes" as false would apply a change meant as a dry run.
        for value in [1, 0, "yes", "true", JSON.null] as [Any] {
            #expect(refusal { _ = try AdminJSON.flag(value, key: "dry_run") } == 400)
        }
    }

    @Test func trustedNetworksMustAllBeStrings() throws {
        let ok = try AdminJSON.overrides(try body(#"{"trusted_networks": ["10.0.0.0\/8", "192.168.0.0/16"]}"#))
        #expect(ok.trustedNetworks.map(\.description) == ["10.0.0.0/8", "192.168.0.0/16"])
        #expect(refusal { _ = try AdminJSON.overrides(try body(#"{"trusted_networks": ["10.0.0.0/8", 5]}"#)) } == 400)
    }
}

@Suite("State file values")
struct DurableJSONTests {
    /// A configuration with the two pools, all traffic on blue.
    let config = TurnoutConfig(
        settings: .init(), pools: pools, split: Split(partsPerMillion: [1_000_000, 0])!, logLevel: .info,
        sourcePath: "/etc/turnout.yaml")

    /// The state in the durable JSON `text`.
    func state(_ text: String) throws -> RoutingState {
        let object = try #require(try JSON.parse(Array(text.utf8)) as? [String: Any])
        return try RoutingState.fromDurableJSON(object, config: config)
    }

    /// A durable state with blue's one member written as `member`.
    func withBlueMember(_ member: String) -> String {
        #"{"split": {"blue": 1000000, "green": 0}, "pools": {"blue": ["# + member + "]}}"
    }

    @Test func wholeNumbersWrittenWithAFractionAreRead() throws {
        let members = #"{"blue": [{"address": "10.0.0.1:80", "weight": 2.0}]}"#
        let s = try state(#"{"split": {"blue": 1e6, "green": 0.0}, "pools": "# + members + "}")
        #expect(s.split.partsPerMillion == [1_000_000, 0] && s.pools[0].members[0].weight == 2)
    }

    @Test func drainedIsABooleanOrAbsent() throws {
        let absent = try state(withBlueMember(#"{"address": "10.0.0.1:80", "weight": 1}"#))
        #expect(absent.pools[0].members[0].isDrained == false)
        let drained = try state(withBlueMember(#"{"address": "10.0.0.1:80", "weight": 1, "drained": true}"#))
        #expect(drained.pools[0].members[0].isDrained)
        // Not guessed: 1 was true and "yes" false under JSONSerialization.
        for value in ["1", "\"yes\"", "null"] {
            #expect(throws: StateFileError.self) {
                try state(withBlueMember(#"{"address": "10.0.0.1:80", "weight": 1, "drained": "# + value + "}"))
            }
        }
    }

    @Test func aBooleanWeightOrShareIsRefused() {
        #expect(throws: StateFileError.self) {
            try state(withBlueMember(#"{"address": "10.0.0.1:80", "weight": true}"#))
        }
        #expect(throws: StateFileError.self) {
            try state(#"{"split": {"blue": true, "green": 0}, "pools": {}}"#)
        }
    }
}
