/// Finds one cookie in a `Cookie` header value (RFC 6265 §4.2: `name=value` pairs
/// separated by `;` and optional spaces). No allocation; the value is a view of the input.
public enum Cookies {
    /// The value of the first cookie called `name` (case-sensitive, as browsers send it),
    /// without surrounding double quotes; nil when absent.
    public static func value(named name: UnsafeRawBufferPointer, in header: UnsafeRawBufferPointer)
        -> UnsafeRawBufferPointer?
    {
        let n = header.count
        var i = 0
        while i < n {
            while i < n && (header[i] == 0x20 || header[i] == 0x09 || header[i] == 0x3B) { i += 1 }
            let nameStart = i
            while i < n && header[i] != 0x3D && header[i] != 0x3B { i += 1 }
            var nameEnd = i
            while nameEnd > nameStart && (header[nameEnd - 1] == 0x20 || header[nameEnd - 1] == 0x09) { nameEnd -= 1 }
            guard i < n, header[i] == 0x3D else { continue }  // no '=': not a pair, skip it
            i += 1
            var valueStart = i
            while i < n && header[i] != 0x3B { i += 1 }
            var valueEnd = i
            while valueEnd > valueStart && (header[valueEnd - 1] == 0x20 || header[valueEnd - 1] == 0x09) {
                valueEnd -= 1
            }
            if nameEnd - nameStart == name.count && memoryEqual(header, nameStart, name) {
                if valueEnd - valueStart >= 2 && header[valueStart] == 0x22 && header[valueEnd - 1] == 0x22 {
                    valueStart += 1
                    valueEnd -= 1
                }
                return UnsafeRawBufferPointer(rebasing: header[valueStart..<valueEnd])
            }
        }
        return nil
    }

    @inline(__always)
    static func memoryEqual(_ a: UnsafeRawBufferPointer, _ at: Int, _ b: UnsafeRawBufferPointer) -> Bool {
        for k in 0..<b.count where a[at + k] != b[k] { return false }
        return true
    }
}
