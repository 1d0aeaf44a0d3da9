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

    /// Why a file could not be read.
    enum ReadError: Error, Equatable {
        /// There is no file at the path (ENOENT, or a folder on the way is missing).
        case missing
        /// It exists but could not be opened or read (a directory included); the errno.
        case unreadable(Int32)
    }

    /// The bytes of the file at `path`.
    static func read(_ path: String) -> Result<[UInt8], ReadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(errno == ENOENT || errno == ENOTDIR ? .missing : .unreadable(errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.append(contentsOf: chunk[0..<n])
            } else if n == 0 {
                return .success(bytes)
            } else if errno != EINTR {
                return .failure(.unreadable(errno))
            }
        }
    }

    /// The whole file at `path`, or nil when it cannot be opened or read (a directory included).
    static func contents(_ path: String) -> [UInt8]? {
        try? read(path).get()
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

    /// `path` made absolute against the current directory (unchanged when it already starts with `/`).
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" + path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd + "/" + path
    }

    /// An absolute path with `.` components, `..` components and repeated slashes taken out (no symlinks are
    /// resolved); `..` at the root stays at the root.
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}
