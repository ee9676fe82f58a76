import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What an agent said about itself, read by the director-side `rsagent weight`.
public enum AgentReading: Sendable, Equatable {
    /// In service with this weight (0–100, percent of capacity).
    case ready(Int)
    case drain
    case maint
    case down

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
    /// commas; `N%` a weight; `drain`, `maint`, `down`/`fail`/`stopped` states; `ready`/`up`.
    /// Any agent (not only rsagent) speaking that protocol is understood.
    public static func parse(agentLine text: String) -> AgentReading? {
        let line = text.split(whereSeparator: \.isNewline).first ?? ""
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
                if state != .maint { state = .down }
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
        guard text.hasPrefix("HTTP/"), let split = text.range(of: "\r\n\r\n") else { return nil }
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) }
        guard status == 200 else { return nil }
        let body = text[split.upperBound...]
        if let n = Int(body.trimmingCharacters(in: .whitespacesAndNewlines)) { return .ready(max(0, min(n, 100))) }
        struct Load: Decodable {
            var weight: Int
            var admin_state: String
            var state: String
        }
        guard let l = try? JSONDecoder().decode(Load.self, from: Data(body.utf8)) else { return nil }
        if l.state == "down" { return .down }
        switch l.admin_state {
        case "drain": return .drain
        case "maint": return .maint
        default: return .ready(max(0, min(l.weight, 100)))
        }
    }
}

/// Reads an agent's report over TCP within `timeout` seconds. Both of rsagent's ports are
/// understood: the agent-check port speaks first, so the client listens briefly before asking;
/// if nothing comes, it asks for `GET /load` over HTTP/1.0.
public func readAgent(host: String, port: Int, timeout: Double) throws -> AgentReading {
    let what = "reading the load report of \(host):\(port)"
    let deadline = monotonicSeconds() + timeout
    let fd = try connectTCP(host: host, port: port, deadline: deadline, what: what)
    defer { close(fd) }
    var received = [UInt8]()
    let listenFor = min(0.25, timeout / 4)
    if !(try waitReadable(fd, until: min(deadline, monotonicSeconds() + listenFor), what: what)) {
        let request = "GET /load HTTP/1.0\r\nHost: \(host)\r\nAccept: application/json\r\n\r\n"
        let sent = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent > 0 else {
            throw SystemError(operation: what, errno: errno, reason: String(cString: strerror(errno)))
        }
    }
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while received.count < 1 << 20 {
        guard try waitReadable(fd, until: deadline, what: what) else {
            throw SystemError(
                operation: what, errno: ETIMEDOUT,
                reason:
                    "no complete answer within \(timeout.formatted) s; is rsagent run serving load.http or load.agent_check there?"
            )
        }
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 && received.isEmpty {
            throw SystemError(operation: what, errno: errno, reason: String(cString: strerror(errno)))
        }
        if n <= 0 { break }
        received += chunk[0..<n]
    }
    guard !received.isEmpty else {
        throw SystemError(
            operation: what, errno: 0,
            reason: "the agent closed the connection without answering; add this host to its load.allow")
    }
    let text = String(decoding: received, as: UTF8.self)
    if let r = text.hasPrefix("HTTP/") ? AgentReading.parse(httpResponse: text) : AgentReading.parse(agentLine: text) {
        return r
    }
    let first = text.split(whereSeparator: \.isNewline).first.map { String($0.prefix(80)) } ?? ""
    throw SystemError(
        operation: what, errno: 0,
        reason: "the answer is neither an agent-check line nor rsagent's HTTP report (got `\(first)`)")
}

private func connectTCP(host: String, port: Int, deadline: Double, what: String) throws -> Int32 {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_NUMERICSERV
    var list: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, String(port), &hints, &list)
    guard rc == 0, let first = list else {
        throw SystemError(
            operation: what, errno: 0, reason: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
    }
    defer { freeaddrinfo(list) }
    var lastErrno: Int32 = 0
    var ai: UnsafeMutablePointer<addrinfo>? = first
    while let a = ai {
        ai = a.pointee.ai_next
        let fd = socket(
            a.pointee.ai_family,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { lastErrno = errno; continue }
        if connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
        guard errno == EINPROGRESS else { lastErrno = errno; close(fd); continue }
        var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let left = Int32(max(0, (deadline - monotonicSeconds()) * 1000))
        if poll(&pfd, 1, left) == 1 {
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err == 0 { return fd }
            lastErrno = err
        } else {
            lastErrno = ETIMEDOUT
        }
        close(fd)
    }
    throw SystemError(
        operation: what, errno: lastErrno,
        reason:
            "\(String(cString: strerror(lastErrno))); check that rsagent run serves this port and that load.allow admits this host"
    )
}

/// Polls for input until `deadline`; false on timeout.
private func waitReadable(_ fd: Int32, until deadline: Double, what: String) throws -> Bool {
    while true {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let left = Int32(max(0, (deadline - monotonicSeconds()) * 1000))
        let rc = poll(&pfd, 1, left)
        if rc < 0 && errno == EINTR { continue }
        if rc < 0 { throw SystemError(operation: what, errno: errno, reason: String(cString: strerror(errno))) }
        return rc == 1
    }
}
