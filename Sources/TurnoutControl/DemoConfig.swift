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
        split:
          blue: 90%
          green: 10%
        routing:
          pool_header: X-Turnout-Pool
          cohort:
            bucket_cookie:
              name: turnout_bucket
              max_age: 1h
          overrides:
            header: X-Turnout-Pool
            cookie: turnout_pool
            trusted_networks: [127.0.0.0/8, "::1/128"]
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
    public static func banner(port: UInt16, bluePort: UInt16, greenPort: UInt16, adminSocket: String) -> String {
        let u = "http://127.0.0.1:\(port)"
        return """
            Turnout demo is running.
              proxy   \(u)   split: blue 90%, green 10% (a canary)
              blue    http://127.0.0.1:\(bluePort)   (built-in origin)
              green   http://127.0.0.1:\(greenPort)   (built-in origin)

            Try:
              curl -si \(u)/hello                 # a new visitor: 90% blue, 10% green; note Set-Cookie: turnout_bucket
              curl -s -c /tmp/turnout.jar -b /tmp/turnout.jar \(u)/hello   # keeps its bucket: always the same pool
              curl -s -b turnout_bucket=950000 \(u)/hello   # buckets 900000-999999 are the canary's: green
              curl -s -H 'X-Turnout-Pool: green' \(u)/hello # a tester forces green (loopback is a trusted network)
              curl -s -b turnout_pool=green \(u)/hello      # the same with the pool cookie
              curl -s -d 'some body' \(u)/upload            # bodies stream through; the origin echoes what it got

            Shift traffic (admin socket \(adminSocket)):
              turnoutctl status                   # split, generation, members with live counts
              turnoutctl split green=50 blue=50   # ramp the canary: visitors only move onto green
              turnoutctl flip green               # cutover: 100% green, acknowledged by every worker
              turnoutctl rollback                 # back to the previous split, in one step
              turnoutctl history                  # who changed what, when
              curl -s --unix-socket \(adminSocket) http://turnout/v1/status

            Each access-log line below says which pool took the request and why (reason=weight|sticky|header|cookie).
            Press Ctrl-C to stop (in-flight requests finish first).

            """
    }
}
