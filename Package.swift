// swift-tools-version:6.1
import PackageDescription
import class Foundation.ProcessInfo

/// Swift settings shared by the I/O targets: they talk to epoll and raw memory on
/// single-threaded event loops, so they use the Swift 5 language mode and document
/// thread confinement in comments instead of through `Sendable` checking.
///
/// Release builds of the data-plane targets skip the run-time exclusivity checks (each
/// access to a class's stored property through `inout` otherwise costs a
/// `swift_beginAccess`/`swift_endAccess` pair: about a tenth of the proxy's user-space
/// CPU per request, see docs/benchmarks.md). Debug builds and the tests keep them. They
/// are also built with cross-module optimization, so the parser's and the routing table's
/// generic and small functions are specialized and inlined into the worker's code
/// (240 fewer user-space instructions per request in callgrind).
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))]
let ioSettings: [SwiftSetting] = [.swiftLanguageMode(.v5)]

var package = Package(
    name: "Turnout",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "turnout", targets: ["turnout"]),
        .executable(name: "turnoutctl", targets: ["turnoutctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CTurnoutSys"),
        .target(name: "TurnoutHTTP", swiftSettings: hotPathSettings),
        .target(name: "TurnoutRouting", swiftSettings: hotPathSettings),
        .target(name: "TurnoutAdminClient"),
        .target(
            name: "TurnoutCore",
            dependencies: [
                "CTurnoutSys", "TurnoutHTTP", "TurnoutRouting",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: ioSettings + hotPathSettings
        ),
        .target(
            name: "TurnoutControl",
            dependencies: [
                "CTurnoutSys", "TurnoutCore", "TurnoutHTTP", "TurnoutRouting", "TurnoutAdminClient",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: ioSettings + [.enableUpcomingFeature("MemberImportVisibility")]
        ),
        .executableTarget(
            name: "turnout",
            dependencies: [
                "TurnoutControl", "TurnoutCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: ioSettings + [.enableUpcomingFeature("MemberImportVisibility")]
        ),
        .executableTarget(
            name: "turnoutctl",
            dependencies: [
                "TurnoutAdminClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TurnoutHTTPTests", dependencies: ["TurnoutHTTP"]),
        .testTarget(name: "TurnoutRoutingTests", dependencies: ["TurnoutRouting"]),
        .testTarget(
            name: "TurnoutControlTests",
            dependencies: ["TurnoutControl", "TurnoutCore"],
            swiftSettings: ioSettings
        ),
    ]
)

// Micro-benchmarks join the manifest only on request, so `swift test` never builds them.
if ProcessInfo.processInfo.environment["TURNOUT_BENCHMARKS"] != nil {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "TurnoutBenchmarks",
            dependencies: [
                "TurnoutHTTP", "TurnoutRouting", "TurnoutControl",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/TurnoutBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}
