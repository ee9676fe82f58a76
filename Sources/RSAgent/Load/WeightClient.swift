#if canImport(Glibc)
    import Glibc
#endif

/// What an agent said about itself, read by the director-side `rsagent weight`.
public enum AgentReading: Sendable, Equatable {
    /// In service with this weight (0–100, percent of capacity).
    case ready(Int)
    case drain
    case maint
    /// Out of service, with the agent's reason when it gave one (`down #why`, or `reason` in
    /// `/load`).
    case down(String?)

    /// The weight a director should set: `--max` × percent, rounded; 0 unless ready.
    public func weight(max: Int) -> Int {
        guard case .ready(let w) = self else { return 0 }
        return Int((Double(w) * Double(max) / 100).rounded())
    }

    /// keepalived `MISC_CHECK` with `misc_dynamic`: exit 2 + weight sets the weight (a draining
    /// agent gives 2, weight 0: existing connections stay); exit 1 takes the server out.
    public func keepalivedExitCode(max: Int) -> Int32 {
        switch self {
        case .ready, .drain: return Int32(2 + weight(max: max))
        case .maint, .down: return 1
        }
    }

    /// Parses an agent-check line in HAProxy's grammar: words separated by spaces, tabs or
    /// commas; `N%` a weight; `drain`, `maint`, `down`/`fail`/`stopped` states; `ready`/`up`;
    /// a description after `#`. Any agent (not only rsagent) speaking that protocol is understood.
    public static func parse(agentLine text: String) -> AgentReading? {
        let whole = text.split(whereSeparator: \.isNewline).first ?? ""
        // The description is free text: its words are not states.
        let hash = whole.firstIndex(of: "#")
        let line = whole[..<(hash ?? whole.endIndex)]
        let description = hash.map { whole[whole.index(after: $0)...].trimmed }
        var percent: Int?, state: AgentReading?, sawReady = false
        for word in line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }) {
            let w = word.lowercased()
            if w.hasSuffix("%"), let n = Int(w.dropLast()), n >= 0 {
                percent = min(n, 100)
            } else if w == "drain" {
                state = state ?? .drain
            } else if w == "maint" {
                state = .maint
            } else if w == "down" || w == "fail" || w == "stopped" {
                if state != .maint { state = .down(description.flatMap { $0.isEmpty ? nil : $0 }) }
            } else if w == "ready" || w == "up" {
                sawReady = true
            }
        }
        if let state { return state }
        if let percent { return .ready(percent) }
        return sawReady ? .ready(100) : nil
    }

    /// Parses an HTTP response of `GET /load` (rsagent's JSON) or `GET /weight` (one integer).
    public static func parse(httpResponse text: String) -> AgentReading? {
        guard text.hasPrefix("HTTP/"), let body = text.after("\r\n\r\n") else { return nil }
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) }
        guard status == 200 else { return nil }
        if let n = Int(body.trimmed) { return .ready(max(0, min(n, 100))) }
        struct Load: Decodable {
            var weight: Int
            var admin_state: String
            var state: String
            var reason: String?
        }
        guard let l = try? JSON.decode(Load.self, from: body) else { return nil }
        // Read as text, not decoded as enums: a newer agent may say more than this client knows.
        if ServingState(rawValue: l.state) == .down { return .down(l.reason) }
        switch AdminState(rawValue: l.admin_state) {
        case .drain: return .drain
        case .maint: return .maint
        case .ready, nil: return .ready(max(0, min(l.weight, 100)))
        }
    }
}

/// Reads an agent's report over TCP within `timeout` seconds. Both of rsagent's ports are
/// understood: the agent-check port speaks first, so the client listens briefly before asking;
/// if nothing comes, it asks for `GET /load` over HTTP/1.0.
public func readAgent(host: String, port: Int, timeout: Double) throws -> AgentReading {
    let what = "reading the load report of \(endpointText(ip: host, port: port))"
    let request = "GET /load HTTP/1.0\r\nHost: \(hostHeader(host))\r\nAccept: application/json\r\n\r\n"
    let text = try talk(
        host: host, port: port, timeout: timeout, listenFirst: min(0.25, timeout / 4), request: request, what: what,
        silent: "is rsagent run serving load.http or load.agent_check there?", refused: "load.allow")
    if let r = text.hasPrefix("HTTP/") ? AgentReading.parse(httpResponse: text) : AgentReading.parse(agentLine: text) {
        return r
    }
    let first = text.split(whereSeparator: \.isNewline).first.map { String($0.prefix(80)) } ?? ""
    throw SystemError(
        operation: what, errno: 0,
        reason: "the answer is neither an agent-check line nor rsagent's HTTP report (got `\(first)`)")
}
