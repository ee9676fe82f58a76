/// An HTTP answer, decided without any I/O by the load report and the test service.
public struct HTTPAnswer: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var contentType: String
    public var body: String
    /// Extra headers (`Allow` on 405).
    public var headers: [(String, String)] = []

    public static func == (a: HTTPAnswer, b: HTTPAnswer) -> Bool {
        a.status == b.status && a.reason == b.reason && a.contentType == b.contentType && a.body == b.body
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }
}

extension HTTPAnswer {
    /// A `text/plain` answer.
    static func plain(_ status: Int, _ reason: String, _ body: String, headers: [(String, String)] = []) -> HTTPAnswer {
        HTTPAnswer(
            status: status, reason: reason, contentType: "text/plain; charset=utf-8", body: body, headers: headers)
    }
    static func notFound(_ body: String) -> HTTPAnswer { plain(404, "Not Found", body) }
    /// 405 for anything but GET and HEAD: the daemon's endpoints are read-only.
    static func getOnly(_ body: String) -> HTTPAnswer {
        plain(405, "Method Not Allowed", body, headers: [("Allow", "GET, HEAD")])
    }
    static func isRead(_ method: String) -> Bool { method == "GET" || method == "HEAD" }
}

/// The request target without its query string.
func requestPath(_ uri: String) -> Substring {
    uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? uri[...]
}
