#if canImport(Glibc)
    import Glibc
#endif

/// Routes one request of the read-only load report:
///
///     GET /load     JSON (LoadReport)          GET /metrics  Prometheus text 0.0.4
///     GET /weight   the weight, one integer    GET /healthz  200 while in service and samples
///                                                             are fresh, else 503 and why
///
/// `HEAD` is answered like `GET` (the caller drops the body); any other method is 405 with
/// `Allow: GET, HEAD` — nothing here changes state.
public func loadHTTPResponse(
    method: String, uri: String, report: LoadReport?, counters: ListenerCounters, health: HealthSnapshot,
    now: Double
) -> HTTPAnswer {
    let path = requestPath(uri)
    guard ["/load", "/weight", "/metrics", "/healthz"].contains(path) else {
        return .notFound("not found: try /load, /weight, /metrics or /healthz\n")
    }
    guard HTTPAnswer.isRead(method) else { return .getOnly("the load report is read-only: use GET\n") }
    guard let report else { return .plain(503, "Service Unavailable", "no sample yet\n") }
    switch path {
    case "/load":
        let json = (try? JSON.encode(report)) ?? "{}"
        return HTTPAnswer(status: 200, reason: "OK", contentType: "application/json", body: json + "\n")
    case "/weight":
        return .plain(200, "OK", "\(report.weight)\n")
    case "/metrics":
        return HTTPAnswer(
            status: 200, reason: "OK", contentType: "text/plain; version=0.0.4; charset=utf-8",
            body: prometheusText(report, counters: counters, health: health))
    default:
        if report.state == .down {
            return .plain(503, "Service Unavailable", "down: \(report.reason ?? "out of service")\n")
        }
        // Fresh: the last sample is younger than three intervals (and two seconds of slack).
        let age = now - report.sampleTime
        if age <= 3 * report.intervalSeconds + 2 { return .plain(200, "OK", "ok\n") }
        return .plain(503, "Service Unavailable", "stale: the last sample is \(Int(age)) s old\n")
    }
}
