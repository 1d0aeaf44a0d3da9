import Foundation
import Logging
import Testing
import TurnoutCore
import TurnoutHTTP
import TurnoutRouting

@testable import TurnoutControl

// Line numbers in the expected errors count from the first line after the opening `"""`.

// MARK: - Helpers

private func parse(_ yaml: String, path: String = "turnout.yaml") throws(ConfigError) -> TurnoutConfig {
    try ConfigLoader.parse(yaml: yaml, path: path)
}

/// Parses `yaml`, expecting an error at `line` for `key`; returns the error for further checks.
@discardableResult
private func expectError(
    _ yaml: String,
    line: Int,
    key: String,
    containing fragment: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigError? {
    do {
        let config = try parse(yaml)
        Issue.record("expected an error, got \(config)", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.file == "turnout.yaml", sourceLocation: sourceLocation)
        #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
        #expect(error.key == key, "\(error)", sourceLocation: sourceLocation)
        if let fragment {
            #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        }
        return error
    }
}

private func member(_ text: String, weight: Int = 1) -> PoolMember {
    guard let address = MemberAddress.parse(text) else { preconditionFailure("bad test address \(text)") }
    return PoolMember(address: address, weight: weight)
}

/// The repository root, found from this file's real location (the test file may be reached through a symlink).
private func repositoryRoot() -> URL {
    URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent()  // TurnoutControlTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()
}

// MARK: - Valid files

@Test func fullConfigLoadsEveryValue() throws {
    let yaml = """
        workers: 3
        listen:
          - 127.0.0.1:8080
          - "[::1]:8081"
        pools:
          blue:
            members:
              - 127.0.0.1:9001
              - address: 127.0.0.1:9003
                weight: 2
          green:
            members:
              - address: "[::1]:9002"
        active: green
        timeouts:
          client_header: 250ms
          client_idle: 2m
          body_idle: 45
          upstream_connect: 1s
          upstream_response: 1h
          upstream_idle: 90s
          drain: 0
        limits:
          max_request_line: 4k
          max_header_size: 1MiB
          max_headers: 50
          buffer_size: 64KiB
          max_body_size: 2g
        upstream:
          max_idle_per_member: 8
        headers:
          trust_forwarded: true
          preserve_host: false
          request_id: X-Trace-Id
        log:
          level: debug
          access: /var/log/turnout/access.log
          format: json
        """
    let config = try parse(yaml, path: "/etc/turnout/turnout.yaml")

    var settings = ProxySettings()
    settings.workers = 3
    settings.listeners = [ListenAddress(host: "127.0.0.1", port: 8080), ListenAddress(host: "::1", port: 8081)]
    settings.timeouts.clientHeaderMs = 250
    settings.timeouts.clientIdleMs = 120_000
    settings.timeouts.bodyIdleMs = 45_000
    settings.timeouts.upstreamConnectMs = 1_000
    settings.timeouts.upstreamResponseMs = 3_600_000
    settings.timeouts.upstreamIdleMs = 90_000
    settings.timeouts.drainMs = 0
    settings.limits.head = HTTPHeadLimits(maxStartLineBytes: 4096, maxHeadBytes: 1 << 20, maxHeaderCount: 50)
    settings.limits.bufferBytes = 64 * 1024
    settings.limits.maxBodyBytes = 2 << 30
    settings.upstream.maxIdlePerMember = 8
    settings.headers.trustForwarded = true
    settings.headers.preserveHost = false
    settings.headers.requestIDHeader = "X-Trace-Id"
    settings.accessLog.destination = .file("/var/log/turnout/access.log")
    settings.accessLog.format = .json

    let expected = TurnoutConfig(
        settings: settings,
        pools: [
            Pool(name: "blue", members: [member("127.0.0.1:9001"), member("127.0.0.1:9003", weight: 2)]),
            Pool(name: "green", members: [member("[::1]:9002")]),
        ],
        split: .all(to: 1, of: 2),
        logLevel: .debug,
        sourcePath: "/etc/turnout/turnout.yaml"
    )
    #expect(config == expected)
}

@Test func omittedSectionsTakeDefaults() throws {
    let config = try parse(
        """
        listen: [127.0.0.1:8080]
        pools:
          app:
            members: [127.0.0.1:9001]
        active: app
        """
    )
    var expected = ProxySettings()
    expected.listeners = [ListenAddress(host: "127.0.0.1", port: 8080)]
    expected.workers = ProcessInfo.processInfo.activeProcessorCount
    #expect(config.settings == expected)
    #expect(config.pools == [Pool(name: "app", members: [member("127.0.0.1:9001")])])
    #expect(config.activePool == "app")
    #expect(config.logLevel == .info)
    #expect(config.sourcePath == "turnout.yaml")
}

@Test func sectionsWrittenWithoutValuesAreEmpty() throws {
    let config = try parse(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        timeouts:
        limits:
        headers: {}
        log:
        """
    )
    #expect(config.settings.timeouts == TimeoutSettings())
    #expect(config.settings.limits == LimitSettings())
    #expect(config.settings.headers == HeaderSettings())
    #expect(config.settings.accessLog == AccessLogSettings())
}

@Test func workersAutoMeansActiveProcessorCount() throws {
    let config = try parse(
        """
        workers: auto
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """
    )
    #expect(config.settings.workers == ProcessInfo.processInfo.activeProcessorCount)
}

@Test func poolsKeepFileOrder() throws {
    let config = try parse(
        """
        listen: [127.0.0.1:8080]
        pools:
          zeta: {members: [127.0.0.1:9001]}
          alpha: {members: [127.0.0.1:9002]}
          mid_1-x: {members: [127.0.0.1:9003]}
        active: alpha
        """
    )
    #expect(config.pools.map(\.name) == ["zeta", "alpha", "mid_1-x"])
}

@Test func quotedScalarsMeanTheSameAsPlainOnes() throws {
    let config = try parse(
        """
        workers: "2"
        listen: ["127.0.0.1:8080"]
        pools:
          app:
            members:
              - {address: "127.0.0.1:9001", weight: "5"}
        active: "app"
        headers: {trust_forwarded: "true"}
        log: {access: "off"}
        """
    )
    #expect(config.settings.workers == 2)
    #expect(config.pools[0].members == [member("127.0.0.1:9001", weight: 5)])
    #expect(config.settings.headers.trustForwarded)
    #expect(config.settings.accessLog.destination == .off)
}

@Test func ipv6AddressesAreStoredCanonically() throws {
    let config = try parse(
        """
        listen: ["[0:0::1]:8080", "[::]:8081"]
        pools: {app: {members: ["[FD00:0::10]:9000"]}}
        active: app
        """
    )
    #expect(config.settings.listeners.map(\.host) == ["::1", "::"])
    #expect(config.pools[0].members[0].address == MemberAddress(host: "fd00::10", port: 9000))
}

@Test func durationAndSizeUnits() {
    #expect(ConfigValues.milliseconds("250ms") == 250)
    #expect(ConfigValues.milliseconds("10s") == 10_000)
    #expect(ConfigValues.milliseconds("2m") == 120_000)
    #expect(ConfigValues.milliseconds("1h") == 3_600_000)
    #expect(ConfigValues.milliseconds("7") == 7_000)
    #expect(ConfigValues.milliseconds("1.5s") == nil)
    #expect(ConfigValues.milliseconds("10 s") == nil)
    #expect(ConfigValues.milliseconds("-1s") == nil)
    #expect(ConfigValues.milliseconds("99999999999999999999s") == nil)
    #expect(ConfigValues.bytes("4096") == 4096)
    #expect(ConfigValues.bytes("8k") == 8192)
    #expect(ConfigValues.bytes("8KiB") == 8192)
    #expect(ConfigValues.bytes("3m") == 3 << 20)
    #expect(ConfigValues.bytes("3MiB") == 3 << 20)
    #expect(ConfigValues.bytes("2GiB") == 2 << 30)
    #expect(ConfigValues.bytes("8KB") == nil)
    #expect(ConfigValues.bytes("8 KiB") == nil)
    #expect(ConfigValues.describeBytes(16384) == "16KiB")
    #expect(ConfigValues.describeBytes(1000) == "1000")
}

@Test func accessLogPathsResolveAgainstTheConfigFolder() throws {
    func destination(_ access: String, path: String) throws -> AccessLogSettings.Destination {
        let yaml = """
            listen: [127.0.0.1:8080]
            pools: {app: {members: [127.0.0.1:9001]}}
            active: app
            log: {access: "\(access)"}
            """
        return try ConfigLoader.parse(yaml: yaml, path: path).settings.accessLog.destination
    }
    let configPath = "/etc/turnout/turnout.yaml"
    #expect(try destination("logs/access.log", path: configPath) == .file("/etc/turnout/logs/access.log"))
    #expect(try destination("../access.log", path: configPath) == .file("/etc/access.log"))
    #expect(try destination("/tmp/a.log", path: configPath) == .file("/tmp/a.log"))
    #expect(try destination("./off", path: configPath) == .file("/etc/turnout/off"))
    #expect(try destination("stderr", path: configPath) == .stderr)
    let relative = try destination("access.log", path: "turnout.yaml")
    #expect(relative == .file(FileManager.default.currentDirectoryPath + "/access.log"))
}

@Test func emptyRequestIDDisablesTheHeader() throws {
    let config = try parse(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        headers:
          request_id: ""
        """
    )
    #expect(config.settings.headers.requestIDHeader == "")
}

@Test func zeroWeightMemberStaysInThePool() throws {
    let config = try parse(
        """
        listen: [127.0.0.1:8080]
        pools:
          app:
            members:
              - 127.0.0.1:9001
              - {address: 127.0.0.1:9002, weight: 0}
        active: app
        """
    )
    #expect(config.pools[0].members.map(\.weight) == [1, 0])
}

// MARK: - Errors: keys and shapes

@Test func unknownTopLevelKeyIsAnError() {
    let error = expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        listn: [127.0.0.1:8081]
        """,
        line: 4, key: "listn", containing: "did you mean \"listen\"?"
    )
    #expect(error?.column == 1)
}

@Test func unknownKeyFarFromAnyKnownOneListsTheKnownKeys() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        frobnicate: true
        """,
        line: 4, key: "frobnicate", containing: "expected one of: workers, listen, pools, active"
    )
}

@Test func unknownNestedKeyIsAnError() {
    let error = expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        timeouts:
          client_header: 5s
          client_heder: 5s
        """,
        line: 6, key: "timeouts.client_heder", containing: "did you mean \"client_header\"?"
    )
    #expect(error?.column == 3)
}

@Test func unknownMemberKeyIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - address: 127.0.0.1:9001
                wieght: 2
        active: blue
        """,
        line: 6, key: "pools.blue.members[0].wieght", containing: "did you mean \"weight\"?"
    )
}

@Test func unknownPoolKeyIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members: [127.0.0.1:9001]
            algorithm: random
        active: blue
        """,
        line: 5, key: "pools.blue.algorithm"
    )
}

@Test func scalarWhereAListBelongsIsAnError() {
    expectError(
        """
        listen: 127.0.0.1:8080
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """,
        line: 1, key: "listen", containing: "expected a list of \"host:port\" addresses, got \"127.0.0.1:8080\""
    )
}

@Test func listWhereAMappingBelongsIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        timeouts:
          - 10s
        """,
        line: 5, key: "timeouts", containing: "expected a mapping, got a list"
    )
}

@Test func rootThatIsNotAMappingIsAnError() {
    expectError("- 127.0.0.1:8080\n", line: 1, key: "", containing: "expected a mapping of settings, got a list")
}

@Test func missingActiveIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        """,
        line: 1, key: "active", containing: "required key is missing"
    )
}

@Test func missingPoolsIsAnError() {
    expectError(
        """
        workers: 2
        listen: [127.0.0.1:8080]
        active: app
        """,
        line: 1, key: "pools", containing: "required key is missing"
    )
}

@Test func emptyFileIsAnError() {
    expectError("# nothing yet\n", line: 1, key: "listen", containing: "required key is missing")
}

@Test func memberMappingWithoutAddressIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - weight: 2
        active: blue
        """,
        line: 5, key: "pools.blue.members[0].address", containing: "required key is missing"
    )
}

@Test func poolWithoutMembersKeyIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue: {}
        active: blue
        """,
        line: 3, key: "pools.blue.members", containing: "required key is missing"
    )
}

@Test func memberThatIsAListIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - [127.0.0.1, 9001]
        active: blue
        """,
        line: 5, key: "pools.blue.members[0]", containing: "got a list"
    )
}

@Test func valueLeftEmptyIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        timeouts:
          drain:
        """,
        line: 5, key: "timeouts.drain", containing: "got nothing"
    )
}

// MARK: - Errors: values

@Test func badDurationIsAnError() {
    let error = expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        timeouts:
          upstream_connect: 5sec
        """,
        line: 5, key: "timeouts.upstream_connect", containing: "expected a duration"
    )
    #expect(error?.column == 21)
}

@Test func zeroTimeoutOtherThanDrainIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        timeouts:
          drain: 0
          client_idle: 0ms
        """,
        line: 6, key: "timeouts.client_idle", containing: "must be longer than zero"
    )
}

@Test func badSizeIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        limits:
          buffer_size: 16KB
        """,
        line: 5, key: "limits.buffer_size", containing: "expected a size"
    )
}

@Test func bufferSizeOutOfRangeIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        limits:
          max_body_size: 1g
          buffer_size: 2KiB
        """,
        line: 6, key: "limits.buffer_size", containing: "must be from 4KiB to 1MiB, got \"2KiB\""
    )
}

@Test func headerLimitBelowRequestLineLimitIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        limits:
          max_header_size: 4KiB
          max_request_line: 8KiB
        """,
        line: 5, key: "limits.max_header_size", containing: "must be at least max_request_line (8KiB)"
    )
}

@Test func malformedAddressIsAnError() {
    expectError(
        """
        listen:
          - 127.0.0.1:8080
          - 127.0.0.1
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """,
        line: 3, key: "listen[1]", containing: "expected \"host:port\""
    )
}

@Test func portOutOfRangeIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:70000]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """,
        line: 1, key: "listen[0]", containing: "expected \"host:port\""
    )
}

@Test func hostNameInsteadOfIPIsAnError() {
    let error = expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - 127.0.0.1:9001
              - localhost:9002
        active: blue
        """,
        line: 6, key: "pools.blue.members[1]", containing: "\"localhost\" is not an IP address"
    )
    #expect(error?.message.contains("no DNS") == true)
}

@Test func hostNameInMemberMappingIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - address: app.internal:80
                weight: 2
        active: blue
        """,
        line: 5, key: "pools.blue.members[0].address", containing: "not an IP address"
    )
}

@Test func unquotedIPv6AddressIsASyntaxErrorWithAHint() {
    expectError(
        """
        listen:
          - [::1]:8080
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """,
        line: 2, key: "", containing: "quote IPv6 addresses"
    )
}

@Test func bracketedIPv4AddressIsAnError() {
    expectError(
        """
        listen: ["[127.0.0.1]:8080"]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """,
        line: 1, key: "listen[0]", containing: "expected \"host:port\""
    )
}

@Test func emptyListenIsAnError() {
    expectError(
        """
        listen: []
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """,
        line: 1, key: "listen", containing: "at least one address"
    )
}

@Test func repeatedListenAddressIsAnError() {
    expectError(
        """
        listen:
          - "[::1]:8080"
          - 127.0.0.1:8080
          - "[0::1]:8080"
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """,
        line: 4, key: "listen[2]", containing: "[::1]:8080 is listed twice (first at line 2)"
    )
}

@Test func unknownActivePoolIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue: {members: [127.0.0.1:9001]}
          green: {members: [127.0.0.1:9002]}
        active: red
        """,
        line: 5, key: "active", containing: "no pool is named \"red\"; the pools are: blue, green"
    )
}

@Test func emptyMembersIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members: []
        active: blue
        """,
        line: 4, key: "pools.blue.members", containing: "needs at least one member"
    )
}

@Test func emptyPoolsIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {}
        active: blue
        """,
        line: 2, key: "pools", containing: "at least one pool"
    )
}

@Test func negativeWeightIsAnError() {
    let error = expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - 127.0.0.1:9001
              - address: 127.0.0.1:9003
                weight: -1
        active: blue
        """,
        line: 7, key: "pools.blue.members[1].weight", containing: "expected an integer from 0 to 10000, got \"-1\""
    )
    #expect(error?.column == 17)
}

@Test func nonNumericWeightIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - {address: 127.0.0.1:9001, weight: x}
        active: blue
        """,
        line: 5, key: "pools.blue.members[0].weight", containing: "got \"x\""
    )
}

@Test func poolWhoseMembersAllWeighZeroIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - {address: 127.0.0.1:9001, weight: 0}
        active: blue
        """,
        line: 5, key: "pools.blue.members", containing: "could never take traffic"
    )
}

@Test func repeatedMemberIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - 127.0.0.1:9001
              - 127.0.0.1:9002
              - address: 127.0.0.1:9001
                weight: 3
        active: blue
        """,
        line: 7, key: "pools.blue.members[2].address",
        containing: "127.0.0.1:9001 is listed twice in pool \"blue\" (first at line 5)"
    )
}

@Test func invalidPoolNameIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue.v2:
            members: [127.0.0.1:9001]
        active: blue.v2
        """,
        line: 3, key: "pools.blue.v2", containing: "invalid pool name"
    )
}

@Test func badWorkersIsAnError() {
    expectError(
        """
        workers: many
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        """,
        line: 1, key: "workers", containing: "expected \"auto\" or an integer from 1 to 1024, got \"many\""
    )
}

@Test func zeroWorkersIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        workers: 0
        """,
        line: 4, key: "workers", containing: "got \"0\""
    )
}

@Test func badLogFormatIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        log:
          level: info
          format: xml
        """,
        line: 6, key: "log.format", containing: "expected text or json, got \"xml\""
    )
}

@Test func badLogLevelIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        log:
          level: verbose
        """,
        line: 5, key: "log.level", containing: "one of trace, debug, info, notice, warning, error, critical"
    )
}

@Test func emptyAccessLogPathIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        log:
          access: ''
        """,
        line: 5, key: "log.access", containing: "got an empty string"
    )
}

@Test func badRequestIDHeaderNameIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        headers:
          preserve_host: true
          request_id: X Request Id
        """,
        line: 6, key: "headers.request_id", containing: "not a valid header name"
    )
}

@Test func yesIsNotABoolean() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        headers:
          trust_forwarded: yes
        """,
        line: 5, key: "headers.trust_forwarded", containing: "expected true or false, got \"yes\""
    )
}

@Test func maxHeadersOutOfRangeIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        limits: {max_headers: 0}
        """,
        line: 4, key: "limits.max_headers", containing: "expected an integer from 1 to 10000"
    )
}

// MARK: - Errors: YAML itself

@Test func duplicateKeyPointsAtTheRepeat() {
    let error = expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        timeouts:
          drain: 10s
          client_idle: 5s
          drain: 20s
        """,
        line: 7, key: "timeouts.drain", containing: "duplicate key (first at line 5)"
    )
    #expect(error?.column == 3)
}

@Test func duplicateTopLevelKeyIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        active: app
        """,
        line: 4, key: "active", containing: "duplicate key (first at line 3)"
    )
}

@Test func duplicateKeyInsideAListIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members:
              - address: 127.0.0.1:9001
              - address: 127.0.0.1:9002
                weight: 1
                address: 127.0.0.1:9003
        active: blue
        """,
        line: 8, key: "pools.blue.members[1].address", containing: "first at line 6"
    )
}

@Test func twoPoolsWithOneNameIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools:
          blue:
            members: [127.0.0.1:9001]
          green:
            members: [127.0.0.1:9002]
          blue:
            members: [127.0.0.1:9003]
        active: blue
        """,
        line: 7, key: "pools.blue", containing: "pool \"blue\" is defined twice (first at line 3)"
    )
}

@Test func duplicateKeyInAFlowMappingIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}, "app": {members: [127.0.0.1:9002]}}
        active: app
        """,
        line: 2, key: "pools.app", containing: "pool \"app\" is defined twice (first at line 2)"
    )
}

@Test func yamlSyntaxErrorNamesTheLine() {
    let error = expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        log:
          level: info
         format: json
        """,
        line: 6, key: "", containing: "invalid YAML"
    )
    #expect(error?.description.hasPrefix("turnout.yaml:6:") == true)
}

@Test func unterminatedQuoteIsASyntaxError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: "app
        """,
        line: 3, key: "", containing: "invalid YAML"
    )
}

@Test func tabIndentationIsASyntaxError() {
    expectError(
        "listen: [127.0.0.1:8080]\npools:\n\tapp: {members: [127.0.0.1:9001]}\nactive: app\n",
        line: 3, key: "", containing: "invalid YAML"
    )
}

@Test func secondDocumentIsAnError() {
    expectError(
        """
        listen: [127.0.0.1:8080]
        pools: {app: {members: [127.0.0.1:9001]}}
        active: app
        ---
        active: app
        """,
        line: 4, key: "", containing: "another document"
    )
}

// MARK: - Reporting and files

@Test func errorDescriptionReadsLikeACompilerDiagnostic() {
    let error = ConfigError(
        file: "turnout.yaml", line: 12, column: 5, key: "pools.blue.members[1].weight",
        message: "expected a positive integer, got \"x\""
    )
    #expect(
        error.description
            == "turnout.yaml:12:5: pools.blue.members[1].weight: expected a positive integer, got \"x\""
    )
    let unreadable = ConfigError(file: "/nope.yaml", line: 0, column: 0, key: "", message: "does not exist")
    #expect(unreadable.description == "/nope.yaml: does not exist")
}

@Test func missingFileIsAnError() {
    let path = "/nonexistent-\(UUID().uuidString)/turnout.yaml"
    let expected = ConfigError(
        file: path, line: 0, column: 0, key: "", message: "the configuration file does not exist"
    )
    #expect(throws: expected) {
        try ConfigLoader.load(path: path)
    }
}

@Test func shippedConfigAndExamplesAreValid() throws {
    let root = repositoryRoot()
    let examples = root.appendingPathComponent("config/examples")
    let names = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { $0.hasSuffix(".yaml") }
    #expect(names.count >= 3)
    let paths =
        [root.appendingPathComponent("config/turnout.yaml").path]
        + names.sorted().map { examples.appendingPathComponent($0).path }
    for path in paths {
        do {
            let config = try ConfigLoader.load(path: path)
            #expect(config.sourcePath == path)
            #expect(!config.settings.listeners.isEmpty)
        } catch {
            Issue.record("\(error)")
        }
    }
}

@Test func shippedDefaultConfigSpellsOutTheDefaults() throws {
    let config = try ConfigLoader.load(path: repositoryRoot().appendingPathComponent("config/turnout.yaml").path)
    var expected = ProxySettings()
    expected.workers = ProcessInfo.processInfo.activeProcessorCount
    expected.listeners = config.settings.listeners
    #expect(config.settings == expected)
    #expect(config.logLevel == .info)
}

@Test func configurationDocShowsEveryShippedFileVerbatim() throws {
    let root = repositoryRoot()
    let doc = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
    let examples = root.appendingPathComponent("config/examples")
    let names = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { $0.hasSuffix(".yaml") }
    let files = ["config/turnout.yaml"] + names.sorted().map { "config/examples/" + $0 }
    for file in files {
        let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        #expect(doc.contains("### `\(file)`"), "docs/configuration.md has no section for \(file)")
        #expect(doc.contains("```yaml\n" + text + "```"), "docs/configuration.md does not show \(file) as it is")
    }
}

// MARK: - busy_poll

@Test func microsecondDurations() {
    #expect(ConfigValues.microseconds("50us") == 50)
    #expect(ConfigValues.microseconds("50µs") == 50)
    #expect(ConfigValues.microseconds("1ms") == 1_000)
    #expect(ConfigValues.microseconds("1s") == 1_000_000)
    #expect(ConfigValues.microseconds("0") == 0)
    #expect(ConfigValues.microseconds("50") == nil)  // bare seconds elsewhere: ambiguous here
    #expect(ConfigValues.microseconds("us") == nil)
    #expect(ConfigValues.microseconds("5 us") == nil)
    #expect(ConfigValues.microseconds("5ns") == nil)
    #expect(ConfigValues.microseconds("99999999999999999999us") == nil)
}

@Test func busyPollKeyReadsOffAndDurations() throws {
    let base = "listen: [127.0.0.1:8080]\npools: {app: {members: [127.0.0.1:9001]}}\nactive: app\n"
    #expect(try parse(base).settings.busyPollMicroseconds == 0)
    #expect(try parse(base + "busy_poll: off\n").settings.busyPollMicroseconds == 0)
    #expect(try parse(base + "busy_poll: 0\n").settings.busyPollMicroseconds == 0)
    #expect(try parse(base + "busy_poll: 50us\n").settings.busyPollMicroseconds == 50)
    #expect(try parse(base + "busy_poll: 1ms\n").settings.busyPollMicroseconds == 1_000)
}

@Test func busyPollKeyErrorsNameLineAndKey() {
    let base = "listen: [127.0.0.1:8080]\npools: {app: {members: [127.0.0.1:9001]}}\nactive: app\n"
    for (value, fragment) in [("2ms", "at most 1ms"), ("50", "expected off or a duration"), ("fast", "expected off"),
                              ("[1]", "expected off")] {
        expectError(base + "busy_poll: \(value)\n", line: 4, key: "busy_poll", containing: fragment)
    }
}

@Test func lowLatencyExampleSetsBusyPoll() throws {
    let config = try ConfigLoader.load(
        path: repositoryRoot().appendingPathComponent("config/examples/low-latency.yaml").path)
    #expect(config.settings.busyPollMicroseconds == 50)
    #expect(config.settings.workers == 2)
}

// MARK: - defer_accept

@Test func deferAcceptIsOnByDefaultAndReadsBooleans() throws {
    let base = "listen: [127.0.0.1:8080]\npools: {app: {members: [127.0.0.1:9001]}}\nactive: app\n"
    #expect(try parse(base).settings.deferAccept)
    #expect(try parse(base + "defer_accept: false\n").settings.deferAccept == false)
    #expect(try parse(base + "defer_accept: true\n").settings.deferAccept)
}

@Test func deferAcceptKeyErrorsNameLineAndKey() {
    let base = "listen: [127.0.0.1:8080]\npools: {app: {members: [127.0.0.1:9001]}}\nactive: app\n"
    for value in ["1s", "yes", "[true]", "off"] {
        expectError(base + "defer_accept: \(value)\n", line: 4, key: "defer_accept", containing: "expected true or false")
    }
}

// MARK: - connect

@Test func connectIsOffByDefaultAndReadsPorts() throws {
    let base = "listen: [127.0.0.1:8080]\npools: {app: {members: [127.0.0.1:9001]}}\nactive: app\n"
    let off = try parse(base)
    #expect(!off.settings.connect.isEnabled)
    #expect(off.settings.connect.ports == [443])
    let on = try parse(base + "connect:\n  enabled: true\n  ports: [443, 8443]\n  pools: [app]\n")
    #expect(on.settings.connect.isEnabled)
    #expect(on.settings.connect.ports == [443, 8443])
    #expect(on.settings.connect.pools == ["app"])
}

@Test(arguments: [
    ("  ports: []\n", "connect.ports", "empty list would refuse every CONNECT"),
    ("  ports: [443, 70000]\n", "connect.ports[1]", "65535"),
    ("  ports: [443, 443]\n", "connect.ports[1]", "listed twice"),
    ("  ports: 443\n", "connect.ports", "a list of ports"),
    ("  enabled: yes please\n", "connect.enabled", "true"),
    ("  allow: all\n", "connect.allow", "enabled, ports, pools"),
    ("  pools: [app, nope]\n", "connect.pools[1]", "no pool named \"nope\" (pools: app)"),
    ("  pools: [app, app]\n", "connect.pools[1]", "listed twice"),
])
func connectErrorsNameTheKey(_ line: String, _ key: String, _ fragment: String) {
    let base = "listen: [127.0.0.1:8080]\npools: {app: {members: [127.0.0.1:9001]}}\nactive: app\nconnect:\n"
    expectError(base + line, line: 5, key: key, containing: fragment)
}

@Test func enabledConnectNeedsPools() {
    let base = "listen: [127.0.0.1:8080]\npools: {app: {members: [127.0.0.1:9001]}}\nactive: app\n"
    expectError(base + "connect:\n  enabled: true\n", line: 5, key: "connect", containing: "needs pools")
}
