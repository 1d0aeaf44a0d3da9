import Foundation
import Testing
import TurnoutRouting

@testable import TurnoutControl

private let head = """
    listen: [127.0.0.1:8080]
    pools:
      blue:
        members: [127.0.0.1:9001]
      green:
        members: [127.0.0.1:9002]
        balance: p2c

    """

private func load(_ tail: String) throws(ConfigError) -> TurnoutConfig {
    try ConfigLoader.parse(yaml: head + tail, path: "routing.yaml")
}

/// Expects an error at `line` (counted in `tail`, after the 7 lines of `head`) for `key`.
private func expectError(_ tail: String, line: Int, key: String, containing fragment: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try load(tail)
        Issue.record("expected an error for \(key)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.line == line + 7, "\(error)", sourceLocation: sourceLocation)
        #expect(error.key == key, "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
    }
}

@Suite("ConfigLoader routing")
struct ConfigLoaderRoutingTests {
    @Test func activeIsOneHundredPercent() throws {
        let config = try load("active: green\n")
        #expect(config.split.partsPerMillion == [0, 1_000_000])
        #expect(config.activePool == "green")
        #expect(config.pools[1].balance == .powerOfTwoChoices)
        #expect(config.pools[0].balance == .roundRobin)
    }

    @Test func splitTakesPercentagesWithFourDecimals() throws {
        let config = try load("split:\n  blue: 99.95%\n  green: 0.05%\n")
        #expect(config.split.partsPerMillion == [999_500, 500])
        #expect(config.activePool == nil)
        #expect(config.splitDescription == "blue 99.95%, green 0.05%")
        let one = try load("split: {green: 100%}\n")
        #expect(one.split.partsPerMillion == [0, 1_000_000])
    }

    @Test func splitErrorsNameTheKey() {
        expectError("split:\n  blue: 90%\n  green: 5%\n", line: 2, key: "split", containing: "add up to 95%")
        expectError("split:\n  blue: 90%\n  purple: 10%\n", line: 3, key: "split.purple", containing: "no pool is named \"purple\"")
        expectError("split:\n  blue: 90.00001%\n  green: 10%\n", line: 2, key: "split.blue", containing: "four decimals")
        expectError("split:\n  blue: 90\n  green: 10\n", line: 2, key: "split.blue", containing: "percentage")
        expectError("active: blue\nsplit: {blue: 100%}\n", line: 2, key: "split", containing: "not both")
        expectError("workers: 1\n", line: -6, key: "active", containing: "required key is missing")
        expectError("active: purple\n", line: 1, key: "active", containing: "no pool is named \"purple\"")
    }

    @Test func routingSectionIsRead() throws {
        let config = try load("""
            active: blue
            routing:
              pool_header: X-Turnout-Pool
              cohort:
                header: X-User-Id
                cookie: user_id
                bucket_cookie:
                  name: tb
                  max_age: 2h
              overrides:
                header: X-Turnout-Pool
                cookie: turnout_pool
                trusted_networks: [10.0.0.0/8, "::1/128", 192.168.1.7]
                token: s3cret-t0ken
              rules:
                - host: "*.example.com"
                  path_prefix: /api/
                  split: {blue: 50%, green: 50%}
                - path_prefix: /beta
                  active: green

            """)
        let r = config.routing
        #expect(r.poolHeader == "X-Turnout-Pool")
        #expect(r.cohort == CohortPolicy(cookie: "user_id", header: "X-User-Id", bucketCookie: BucketCookiePolicy(name: "tb", maxAgeSeconds: 7200)))
        #expect(r.overrides.header == "X-Turnout-Pool" && r.overrides.cookie == "turnout_pool" && r.overrides.token == "s3cret-t0ken")
        #expect(r.overrides.trustedNetworks.map(\.description) == ["10.0.0.0/8", "0:0:0:0:0:0:0:1/128", "192.168.1.7/32"])
        #expect(r.rules == [
            RouteRule(host: "*.example.com", pathPrefix: "/api/", split: Split(partsPerMillion: [500_000, 500_000])!),
            RouteRule(pathPrefix: "/beta", split: Split(partsPerMillion: [0, 1_000_000])!),
        ])
        // The defaults of a bare bucket_cookie.
        let bare = try load("active: blue\nrouting:\n  cohort:\n    bucket_cookie: true\n")
        #expect(bare.routing.cohort.bucketCookie == BucketCookiePolicy(name: "turnout_bucket", maxAgeSeconds: 30 * 86_400))
        let off = try load("active: blue\nrouting:\n  cohort:\n    bucket_cookie: false\n")
        #expect(off.routing.cohort.bucketCookie == nil)
    }

    @Test func routingErrorsNameTheKey() {
        expectError("active: blue\nrouting:\n  overrides:\n    trusted_networks: [10.0.0.0/33]\n", line: 4,
                    key: "routing.overrides.trusted_networks[0]", containing: "from 0 to 32")
        expectError("active: blue\nrouting:\n  overrides:\n    trusted_networks: [example.com/8]\n", line: 4,
                    key: "routing.overrides.trusted_networks[0]", containing: "network")
        expectError("active: blue\nrouting:\n  overrides:\n    token: short\n", line: 4,
                    key: "routing.overrides.token", containing: "at least 8")
        expectError("active: blue\nrouting:\n  overrides:\n    header: \"X Pool\"\n", line: 4,
                    key: "routing.overrides.header", containing: "header name")
        expectError("active: blue\nrouting:\n  rules:\n    - active: green\n", line: 4,
                    key: "routing.rules[0]", containing: "needs \"host\" or \"path_prefix\"")
        expectError("active: blue\nrouting:\n  rules:\n    - path_prefix: api\n      active: green\n", line: 4,
                    key: "routing.rules[0].path_prefix", containing: "starting with /")
        expectError("active: blue\nrouting:\n  rules:\n    - path_prefix: /a\n", line: 4,
                    key: "active", containing: "required key is missing")
        expectError("active: blue\nrouting:\n  cohort:\n    bucket_cookie: {name: tb, ttl: 1h}\n", line: 4,
                    key: "routing.cohort.bucket_cookie.ttl", containing: "unknown key")
        expectError("active: blue\nrouting:\n  sticky: true\n", line: 3, key: "routing.sticky", containing: "unknown key")
    }

    @Test func balanceMustBeKnown() {
        do {
            _ = try ConfigLoader.parse(
                yaml: "listen: [127.0.0.1:8080]\npools:\n  a:\n    members: [127.0.0.1:1]\n    balance: random\nactive: a\n",
                path: "b.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 5 && error.key == "pools.a.balance" && error.message.contains("round_robin, p2c"))
        }
    }
}

@Test func routingDocShowsEveryRoutingExampleVerbatimAndEachLoads() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let doc = try String(contentsOf: root.appendingPathComponent("docs/routing.md"), encoding: .utf8)
    let dir = root.appendingPathComponent("config/examples/routing")
    let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
    #expect(names == ["ab-test.yaml", "canary.yaml", "rules.yaml", "testers.yaml"])
    for name in names {
        let file = "config/examples/routing/" + name
        let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        #expect(doc.contains("### `\(file)`"), "docs/routing.md has no section for \(file)")
        #expect(doc.contains("```yaml\n" + text + "```"), "docs/routing.md does not show \(file) as it is")
        do {
            _ = try ConfigLoader.load(path: root.appendingPathComponent(file).path)
        } catch {
            Issue.record("\(error)")
        }
    }
    let canary = try ConfigLoader.load(path: dir.appendingPathComponent("canary.yaml").path)
    #expect(canary.splitDescription == "blue 95%, green 5%")
    #expect(canary.routing.cohort.bucketCookie?.maxAgeSeconds == 30 * 86_400)
    let ab = try ConfigLoader.load(path: dir.appendingPathComponent("ab-test.yaml").path)
    #expect(ab.pools.map(\.balance) == [.powerOfTwoChoices, .roundRobin, .roundRobin])
}
