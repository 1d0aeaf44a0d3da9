import TurnoutCore

/// The configuration `turnout demo` runs: the embedded default, written as YAML and
/// loaded through the same loader a user's file goes through.
public enum DemoConfig {
    /// The demo's YAML for the given ports.
    public static func yaml(port: UInt16, bluePort: UInt16, greenPort: UInt16) -> String {
        """
        # turnout demo: two built-in origins behind the proxy
        workers: 1
        listen:
          - 127.0.0.1:\(port)
        pools:
          blue:
            members:
              - 127.0.0.1:\(bluePort)
          green:
            members:
              - 127.0.0.1:\(greenPort)
        active: blue
        log:
          level: info
          access: stdout
          format: text

        """
    }

    public static func make(port: UInt16, bluePort: UInt16, greenPort: UInt16) throws -> TurnoutConfig {
        try ConfigLoader.parse(yaml: yaml(port: port, bluePort: bluePort, greenPort: greenPort), path: "<demo>")
    }

    /// What the demo prints once it is serving.
    public static func banner(port: UInt16, bluePort: UInt16, greenPort: UInt16) -> String {
        """
        Turnout demo is running.
          proxy   http://127.0.0.1:\(port)   (active pool: blue)
          blue    http://127.0.0.1:\(bluePort)   (built-in origin)
          green   http://127.0.0.1:\(greenPort)   (built-in origin)

        Try:
          curl -s http://127.0.0.1:\(port)/hello            # answered by blue, echoing what it received
          curl -si http://127.0.0.1:\(port)/hello | grep -i x-turnout-demo-pool
          curl -s -d 'some body' http://127.0.0.1:\(port)/upload
          curl -s -H 'Connection: close' http://127.0.0.1:\(port)/   # hop-by-hop headers never reach the origin

        Access-log lines appear below. Press Ctrl-C to stop (in-flight requests finish first).

        """
    }
}
