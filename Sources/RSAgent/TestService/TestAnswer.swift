#if canImport(Glibc)
    import Glibc
#endif

/// What the test service says to each client: which realserver answered, through which address.
///
///     rsagent test: host=rs1 rip=10.0.0.11 local=192.0.2.100:31337 client=198.51.100.7:40312 mode=dr
///
/// `local` is the address the client's packet arrived for — the VIP when the director sent it,
/// the RIP when someone connected to the realserver directly.
public struct TestAnswer: Sendable, Equatable, Codable {
    public var host: String
    public var rip: String
    public var local: String
    public var client: String
    public var mode: String

    public init(host: String, rip: String, local: String, client: String, mode: String) {
        self.host = host; self.rip = rip; self.local = local; self.client = client; self.mode = mode
    }

    static let prefix = "rsagent test: "

    /// The plain-TCP line (also the HTTP text body), newline included.
    public var line: String {
        "\(Self.prefix)host=\(host) rip=\(rip) local=\(local) client=\(client) mode=\(mode)\n"
    }

    /// The HTTP JSON body for `Accept: application/json`.
    public var json: String {
        ((try? JSON.encode(self)) ?? "{}") + "\n"
    }

    /// Reads a line back (what `rsagent probe` does); nil if it is not one.
    public init?(line text: String) {
        guard let first = text.split(whereSeparator: \.isNewline).first, first.hasPrefix(Self.prefix) else {
            return nil
        }
        var fields: [Substring: Substring] = [:]
        for word in first.dropFirst(Self.prefix.count).split(separator: " ") {
            guard let eq = word.firstIndex(of: "=") else { continue }
            fields[word[..<eq]] = word[word.index(after: eq)...]
        }
        guard let host = fields["host"], let local = fields["local"] else { return nil }
        self.init(
            host: String(host), rip: String(fields["rip"] ?? "-"), local: String(local),
            client: String(fields["client"] ?? "-"), mode: String(fields["mode"] ?? "-"))
    }

    /// Reads a JSON body back; nil if it is not one.
    public init?(json text: String) {
        guard let a = try? JSON.decode(TestAnswer.self, from: text) else { return nil }
        self = a
    }
}

/// `address:port`, IPv6 in brackets, IPv4-mapped IPv6 shown as IPv4 (a dual-stack listener
/// reports IPv4 peers as `::ffff:a.b.c.d`).
public func endpointText(ip: String, port: Int) -> String {
    // Byte tests, not Foundation's String.contains: this runs for every connection.
    if ip.hasPrefix("::ffff:"), ip.utf8.contains(UInt8(ascii: ".")) { return "\(ip.dropFirst(7)):\(port)" }
    return ip.utf8.contains(UInt8(ascii: ":")) ? "[\(ip)]:\(port)" : "\(ip):\(port)"
}

/// The HTTP answer of the test service, decided without I/O: `GET /` (or `HEAD`) gives the line
/// as text, or JSON when the client accepts `application/json`; other paths 404, other methods
/// 405.
public func testHTTPResponse(method: String, uri: String, wantsJSON: Bool, answer: TestAnswer) -> HTTPAnswer {
    guard requestPath(uri) == "/" else { return .notFound("not found: the test service answers GET /\n") }
    guard HTTPAnswer.isRead(method) else { return .getOnly("the test service answers GET /\n") }
    if wantsJSON {
        return HTTPAnswer(status: 200, reason: "OK", contentType: "application/json", body: answer.json)
    }
    return .plain(200, "OK", answer.line)
}
