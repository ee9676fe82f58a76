import Foundation

/// Routes one request of the read-only load report:
///
///     GET /load     JSON (LoadReport)          GET /metrics  Prometheus text 0.0.4
///     GET /weight   the weight, one integer    GET /healthz  200 while samples are fresh, else 503
///
/// `HEAD` is answered like `GET` (the caller drops the body); any other method is 405 with
/// `Allow: GET, HEAD` — nothing here changes state.
public func loadHTTPResponse(
    method: String, uri: String, report: LoadReport?, counters: ListenerCounters, now: Double
) -> HTTPAnswer {
    let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
    let known = ["/load", "/weight", "/metrics", "/healthz"]
    guard known.contains(path) else {
        return HTTPAnswer(
            status: 404, reason: "Not Found", contentType: "text/plain; charset=utf-8",
            body: "not found: try /load, /weight, /metrics or /healthz\n")
    }
    guard method == "GET" || method == "HEAD" else {
        return HTTPAnswer(
            status: 405, reason: "Method Not Allowed", contentType: "text/plain; charset=utf-8",
            body: "the load report is read-only: use GET\n", headers: [("Allow", "GET, HEAD")])
    }
    guard let report else {
        return HTTPAnswer(
            status: 503, reason: "Service Unavailable", contentType: "text/plain; charset=utf-8",
            body: "no sample yet\n")
    }
    switch path {
    case "/load":
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = (try? enc.encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return HTTPAnswer(status: 200, reason: "OK", contentType: "application/json", body: json + "\n")
    case "/weight":
        return HTTPAnswer(
            status: 200, reason: "OK", contentType: "text/plain; charset=utf-8", body: "\(report.weight)\n")
    case "/metrics":
        return HTTPAnswer(
            status: 200, reason: "OK", contentType: "text/plain; version=0.0.4; charset=utf-8",
            body: prometheusText(report, counters: counters))
    default:
        // Fresh: the last sample is younger than three intervals (and two seconds of slack).
        let age = now - report.sampleTime
        if age <= 3 * report.intervalSeconds + 2 {
            return HTTPAnswer(status: 200, reason: "OK", contentType: "text/plain; charset=utf-8", body: "ok\n")
        }
        return HTTPAnswer(
            status: 503, reason: "Service Unavailable", contentType: "text/plain; charset=utf-8",
            body: "stale: the last sample is \(Int(age)) s old\n")
    }
}
