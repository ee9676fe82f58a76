/// The little of an HTTP/1.x request the daemon's read-only endpoints need, parsed from raw
/// bytes without allocating per header. Pure, so it is unit tested and fuzzed directly.
///
/// Why not a general HTTP library: answering `GET /` with a few dozen bytes, per-request
/// objects (request head, header list, response encoder) cost more than the answer; with this
/// parser and one pre-formatted write per response the test service keeps up with nginx.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request target without its query string.
    public var path: String
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    public var keepAlive: Bool
    /// The `Accept` header names `application/json`.
    public var wantsJSON: Bool
    /// A body follows (`Content-Length` > 0 or any `Transfer-Encoding`): the connection is
    /// closed after the answer rather than reading it.
    public var hasBody: Bool
    /// Bytes of the head, through the blank line.
    public var length: Int

    /// The most a request head may take; more is answered 431 and the connection closed.
    public static let maxLength = 16 * 1024

    public enum Parse: Sendable, Equatable {
        case incomplete
        case tooLarge
        case malformed
        case request(HTTPRequestHead)
    }

    /// Parses the head at the start of `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
        guard let end = headEnd(bytes) else { return bytes.count > maxLength ? .tooLarge : .incomplete }
        if end > maxLength { return .tooLarge }
        // Request line: METHOD SP TARGET SP HTTP/1.x CRLF
        var lineEnd = 0
        while bytes[lineEnd] != 13 { lineEnd += 1 }
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<lineEnd])
        guard let sp1 = line.firstIndex(of: 32), sp1 > 0 else { return .malformed }
        guard let sp2 = line[(sp1 + 1)...].firstIndex(of: 32), sp2 > sp1 + 1 else { return .malformed }
        let version = line[(sp2 + 1)...]
        guard version.count == 8, version.starts(with: "HTTP/1.".utf8), let minor = version.last,
            minor == 48 || minor == 49
        else { return .malformed }
        var target = line[(sp1 + 1)..<sp2]
        if let q = target.firstIndex(of: 63) { target = target[..<q] }  // '?'
        let method = String(decoding: line[0..<sp1], as: UTF8.self)
        guard method.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else { return .malformed }  // A–Z
        var head = HTTPRequestHead(
            method: method, path: String(decoding: target, as: UTF8.self), keepAlive: minor == 49, wantsJSON: false,
            hasBody: false, length: end)
        // Header lines: only Connection, Accept, Content-Length and Transfer-Encoding matter.
        var start = lineEnd + 2
        while start < end - 2 {
            var stop = start
            while bytes[stop] != 13 { stop += 1 }
            let field = UnsafeRawBufferPointer(rebasing: bytes[start..<stop])
            start = stop + 2
            guard let colon = field.firstIndex(of: 58) else { return .malformed }  // ':'
            let name = field[..<colon]
            func value() -> String { lowercased(trimmed(field[(colon + 1)...])) }
            if equalsIgnoringCase(name, "connection") {
                let v = value()
                if v.includes("close") { head.keepAlive = false }
                if v.includes("keep-alive") { head.keepAlive = true }
            } else if equalsIgnoringCase(name, "accept") {
                head.wantsJSON = value().includes("application/json")
            } else if equalsIgnoringCase(name, "content-length") {
                if value() != "0" { head.hasBody = true }
            } else if equalsIgnoringCase(name, "transfer-encoding") {
                head.hasBody = true
            }
        }
        if head.hasBody { head.keepAlive = false }
        return .request(head)
    }

    /// The offset just past the first CRLF CRLF, or nil.
    static func headEnd(_ b: UnsafeRawBufferPointer) -> Int? {
        guard b.count >= 4 else { return nil }
        var i = 0
        while i + 3 < b.count {
            if b[i + 3] == 10 && b[i + 2] == 13 && b[i + 1] == 10 && b[i] == 13 { return i + 4 }
            i += 1
        }
        return nil
    }

    private static func trimmed(_ s: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
        var s = s
        while let f = s.first, f == 32 || f == 9 { s = s.dropFirst() }
        while let l = s.last, l == 32 || l == 9 { s = s.dropLast() }
        return s
    }

    /// ASCII case-insensitive comparison with a lowercase name, without allocating.
    private static func equalsIgnoringCase(_ s: Slice<UnsafeRawBufferPointer>, _ name: StaticString) -> Bool {
        guard s.count == name.utf8CodeUnitCount else { return false }
        return name.withUTF8Buffer { n in
            zip(s, n).allSatisfy { a, b in (a >= 65 && a <= 90 ? a + 32 : a) == b }
        }
    }

    private static func lowercased(_ s: Slice<UnsafeRawBufferPointer>) -> String {
        String(decoding: s.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}

extension HTTPAnswer {
    /// The whole response, status line to body, for one write. `HEAD` gets the headers only.
    public func serialized(keepAlive: Bool, head: Bool = false) -> [UInt8] {
        var s = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
        for (k, v) in headers { s += "\(k): \(v)\r\n" }
        s += keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
        if !head { s += body }
        return Array(s.utf8)
    }
}
