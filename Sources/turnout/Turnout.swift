import ArgumentParser
import Logging
import TurnoutControl
import TurnoutCore
#if canImport(Glibc)
import Glibc
#endif

/// The `turnout` command: run the proxy, check a configuration, or run the demo.
@main
struct Turnout: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "turnout",
        abstract: "A traffic-shifting HTTP reverse proxy: blue/green cutover, canaries, instant rollback.",
        subcommands: [Run.self, Check.self, Demo.self]
    )
}

/// Sets up swift-log to write program logs to stderr at `level`.
func makeLogger(level: Logger.Level) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "turnout")
    logger.logLevel = level
    return logger
}

func loadConfig(_ path: String) throws -> TurnoutConfig {
    do {
        return try ConfigLoader.load(path: path)
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

extension Turnout {
    /// `turnout run --config FILE`
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the proxy with a configuration file.")

        @Option(name: .shortAndLong, help: "Path of the YAML configuration.")
        var config: String = "config/turnout.yaml"

        func run() throws {
            let cfg = try loadConfig(config)
            let logger = makeLogger(level: cfg.logLevel)
            do {
                _ = try TurnoutProcess.serve(config: cfg, logger: logger)
            } catch {
                printError("turnout: cannot start: \(error)")
                throw ExitCode(1)
            }
        }
    }

    /// `turnout check --config FILE`
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a configuration file without starting.")

        @Option(name: .shortAndLong, help: "Path of the YAML configuration.")
        var config: String = "config/turnout.yaml"

        func run() throws {
            let cfg = try loadConfig(config)
            print("\(config): OK (\(cfg.pools.count) pools, split \(cfg.splitDescription), \(cfg.settings.listeners.count) listeners, \(cfg.settings.workers) workers)")
        }
    }

    /// `turnout demo`
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start two built-in origins (blue and green) and the proxy in front of them.")

        @Option(help: "Port of the proxy on 127.0.0.1.")
        var port: UInt16 = 8080

        func run() throws {
            let logger = makeLogger(level: .info)
            // Before any thread starts: every thread must block the shutdown signals so
            // they reach the control loop's signalfd instead of killing the process.
            ProxyServer.blockShutdownSignals()
            let blue = try DemoOrigin(name: "blue")
            let green = try DemoOrigin(name: "green")
            blue.start()
            green.start()
            var cfg = try DemoConfig.make(port: port, bluePort: blue.port, greenPort: green.port)
            // A fresh state directory per run: the demo always starts from its own split.
            var template = Array("/tmp/turnout-demo-XXXXXX".utf8CString)
            guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
                printError("turnout demo: cannot create a state directory in /tmp")
                throw ExitCode(1)
            }
            let stateFile = dir + "/state.json"
            let auditFile = dir + "/audit.log"
            cfg.state.file = stateFile
            cfg.state.auditFile = auditFile
            // The state directory is the demo's own: gone again when the demo stops.
            defer {
                for file in [stateFile, auditFile, stateFile + ".tmp-\(getpid())"] { unlink(file) }
                rmdir(dir)
            }
            do {
                _ = try TurnoutProcess.serve(config: cfg, logger: logger) { _, control in
                    print(DemoConfig.banner(port: port, bluePort: blue.port, greenPort: green.port, adminSocket: control.socketPath))
                    // Access-log lines go straight to fd 1: the banner must be out before them.
                    fflush(stdout)
                }
            } catch {
                printError("turnout demo: cannot start: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
