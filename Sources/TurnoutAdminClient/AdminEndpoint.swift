#if canImport(Glibc)
import Glibc
#endif

/// Where the admin API listens by default. `turnout` and `turnoutctl` share this, so
/// `turnoutctl status` finds a `turnout demo` or `turnout run` started with no socket
/// setting.
public enum AdminEndpoint {
    /// `$TURNOUT_ADMIN_SOCKET` if set; else `/run/turnout/admin.sock` for root; else
    /// `$XDG_RUNTIME_DIR/turnout/admin.sock`; else `/tmp/turnout-UID/admin.sock`.
    public static var defaultSocketPath: String {
        if let path = environment("TURNOUT_ADMIN_SOCKET"), !path.isEmpty { return path }
        if getuid() == 0 { return "/run/turnout/admin.sock" }
        if let dir = environment("XDG_RUNTIME_DIR"), !dir.isEmpty { return dir + "/turnout/admin.sock" }
        return "/tmp/turnout-\(getuid())/admin.sock"
    }

    private static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}
