import Foundation
import Testing

@testable import TurnoutControl

/// A new empty directory under /tmp, removed by the caller.
private func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/turnout-test-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return try #require(made.map { String(cString: $0) })
}

/// The permission bits of `path`.
private func mode(_ path: String) -> mode_t {
    var st = stat()
    stat(path, &st)
    return st.st_mode & 0o7777
}

// The helpers replace Foundation calls; where Foundation is well defined, it is the reference.
@Suite("Helpers that replace Foundation")
struct FoundationFreeHelpersTests {
    @Test(arguments: [
        "state.json", "/var/lib/turnout/state.json", "/a/b/", "a/b/c/", "/x", "/", "a//b", "a//b/c", "/a//", "./x",
        "../x", "a/./b", "/run/turnout/admin.sock", "relative/dir/file",
    ])
    func parentDirectoryMatchesNSString(_ path: String) {
        #expect(FileSystem.parentDirectory(path) == (path as NSString).deletingLastPathComponent)
    }

    @Test func parentDirectoryOfANameWithoutASlashIsEmpty() {
        // NSString crashes on some of these (swift-corelibs-foundation, one- and two-character paths).
        #expect(FileSystem.parentDirectory("a") == "")
        #expect(FileSystem.parentDirectory("x/") == "")
        #expect(FileSystem.parentDirectory("//") == "/")
        #expect(FileSystem.parentDirectory("") == "")
    }

    @Test(arguments: [
        "/v1/pools/blue/members", "/v1/pools/blue/members/%5B%3A%3A1%5D%3A8080", "/v1/a%2Fb", "/v1/%zz", "/v1/%FF",
        "/v1/%c3%A9", "/v1/%C3", "/v1/a+b", "%", "%4", "%41", "a%", "%00x", "%e2%82%ac%F0%9F%98%80", "%ED%A0%80",
    ])
    func percentDecodingMatchesFoundation(_ text: String) {
        #expect(Text.removingPercentEncoding(text) == text.removingPercentEncoding)
    }

    @Test(arguments: [
        "token", "  token  ", "\tci:0123456789abcdef\t", "\u{A0}\u{2003}x y\u{3000}", " \n x \n ", "", "   ",
        "\u{1680}a", "\u{200B}a\u{200B}", "\r x \r",
    ])
    func whitespaceTrimmingMatchesCharacterSetWhitespaces(_ text: String) {
        #expect(Text.trimming(text, where: Text.isWhitespace) == text.trimmingCharacters(in: .whitespaces))
    }

    @Test func whitespaceIsCharacterSetWhitespacesForEveryScalar() {
        let differ = (0...0x10FFFF).compactMap(Unicode.Scalar.init).filter {
            Text.isWhitespace($0) != CharacterSet.whitespaces.contains($0)
        }
        #expect(differ == [])
    }

    @Test func ifMatchTrimmingTakesQuotesAndSpaces() {
        let trimmed = Text.trimming(#" "12" "#) { $0 == "\"" || $0 == " " }
        #expect(trimmed == "12")
        #expect(trimmed == #" "12" "#.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")))
    }

    @Test func zeroPaddingMatchesPrintf() {
        for (n, width) in [(0, 3), (7, 3), (59, 2), (123, 2), (2025, 4), (5, 4), (-5, 3), (999, 3)] {
            #expect(Text.zeroPadded(n, width: width) == String(format: "%0\(width)d", n))
        }
    }

    @Test func auditTimestampsAreUTCWithMilliseconds() {
        #expect(AuditLog.timestamp(seconds: 0, milliseconds: 5) == "1970-01-01T00:00:00.005Z")
        #expect(AuditLog.timestamp(seconds: 1_738_367_999, milliseconds: 123) == "2025-01-31T23:59:59.123Z")
        #expect(AuditLog.timestamp(seconds: 951_782_400, milliseconds: 999) == "2000-02-29T00:00:00.999Z")
        let now = AuditLog.timestamp()
        #expect(now.utf8.count == 24 && now.hasSuffix("Z") && now.hasPrefix("20"))
    }

    @Test func fileContentsAreReadWhole() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        try Data(big).write(to: URL(fileURLWithPath: dir + "/big"))
        #expect(FileSystem.contents(dir + "/big") == big)
        try Data().write(to: URL(fileURLWithPath: dir + "/empty"))
        #expect(FileSystem.contents(dir + "/empty") == [])
        #expect(FileSystem.contents(dir + "/missing") == nil)
        #expect(FileSystem.contents(dir) == nil)
        #expect(FileSystem.exists(dir + "/big") && FileSystem.exists(dir) && !FileSystem.exists(dir + "/missing"))
        symlink(dir + "/missing", dir + "/dangling")
        #expect(FileSystem.exists(dir + "/dangling") == FileManager.default.fileExists(atPath: dir + "/dangling"))
    }

    @Test func missingDirectoriesAreCreatedWithTheMode() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileSystem.createDirectories(dir + "/a/b/c", mode: 0o700)
        #expect([dir + "/a", dir + "/a/b", dir + "/a/b/c"].map(mode) == [0o700, 0o700, 0o700])
        try FileSystem.createDirectories(dir + "/a/b", mode: 0o700)  // already there
        try Data().write(to: URL(fileURLWithPath: dir + "/file"))
        #expect(throws: (any Error).self) { try FileSystem.createDirectories(dir + "/file", mode: 0o700) }
        #expect(throws: (any Error).self) { try FileSystem.createDirectories(dir + "/file/sub", mode: 0o700) }
    }

    @Test func tokenFilesAreTrimmedOfHorizontalWhitespace() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/tokens"
        let text = "# operators\n\tci:0123456789abcdef0123 \u{A0}\n  \n 0123456789abcdefXYZ\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let tokens = try ControlPlane.readTokens(path)
        #expect(tokens.map(\.name) == ["ci", "token"])
        let texts = tokens.map { String(decoding: $0.token, as: UTF8.self) }
        #expect(texts == ["0123456789abcdef0123", "0123456789abcdefXYZ"])
        #expect(throws: (any Error).self) { try ControlPlane.readTokens(dir + "/missing") }
    }
}
