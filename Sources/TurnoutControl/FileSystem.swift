import CTurnoutSys
import TurnoutCore

#if canImport(Glibc)
    import Glibc
#endif

/// The few file operations the control plane needs, over POSIX calls.
enum FileSystem {
    /// Whether anything exists at `path`, following symbolic links (a dangling link does not exist).
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// Whether `path` is a directory, following symbolic links.
    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The whole file at `path`, or nil when it cannot be opened or read (a directory included).
    static func contents(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    /// Creates the directory `path` and its missing parents, each with exactly `mode` (the
    /// umask does not narrow it). A directory already there is fine; another kind of file is
    /// an error.
    static func createDirectories(_ path: String, mode: mode_t) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { return }
            throw ConfigurationError("cannot create the directory \(path): \(String(cString: strerror(EEXIST)))")
        }
        let parent = parentDirectory(path)
        if !parent.isEmpty && !exists(parent) { try createDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 {
            let e = errno
            // Another process may have created it in the meantime.
            if e == EEXIST && isDirectory(path) { return }
            throw ConfigurationError("cannot create the directory \(path): \(String(cString: strerror(e)))")
        }
        if chmod(path, mode) != 0 {
            throw ConfigurationError("cannot set the mode of \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// `path` without its last component, as `NSString.deletingLastPathComponent`: repeated
    /// and trailing slashes are ignored; `"/a/b"` and `"/a/b/"` give `"/a"`, `"/a"` and `"/"`
    /// give `"/"`, and a name without a slash gives `""`.
    static func parentDirectory(_ path: String) -> String {
        let components = path.split(separator: "/")
        let root = path.hasPrefix("/") ? "/" : ""
        guard components.count > 1 else { return root }
        return root + components.dropLast().joined(separator: "/")
    }
}
