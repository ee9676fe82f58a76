#if canImport(Glibc)
    import Glibc
#endif

/// One short TCP exchange, for the director- and client-side commands (`weight`, `probe`):
/// connect, wait up to `listenFirst` seconds for the server to speak first (the agent-check and
/// test-service ports do), otherwise send `request` (HTTP/1.0, so the server closes), and read
/// until the server closes — at most 1 MiB, all within `timeout` seconds. `silent` ends the
/// sentence when nothing complete arrives; `refused` names the allow-list a silent close means,
/// if the server has one.
func talk(
    host: String, port: Int, timeout: Double, listenFirst: Double, request: String?, what: String,
    silent: String, refused: String?
) throws -> String {
    let deadline = monotonicSeconds() + timeout
    let fd = try connectTCP(host: host, port: port, deadline: deadline, what: what, refused: refused)
    defer { close(fd) }
    if let request, !(try waitReadable(fd, until: min(deadline, monotonicSeconds() + listenFirst), what: what)) {
        let sent = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent > 0 else {
            throw SystemError.current(what)
        }
    }
    var received = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while received.count < 1 << 20 {
        guard try waitReadable(fd, until: deadline, what: what) else {
            throw SystemError(
                operation: what, errno: ETIMEDOUT, reason: "no complete answer within \(timeout.formatted) s; \(silent)"
            )
        }
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 && received.isEmpty {
            throw SystemError.current(what)
        }
        if n <= 0 { break }
        received += chunk[0..<n]
    }
    guard !received.isEmpty else {
        throw SystemError(
            operation: what, errno: 0,
            reason: "the server closed the connection without answering; "
                + (refused.map { "add this host to its \($0)" } ?? silent))
    }
    return String(decoding: received, as: UTF8.self)
}

/// An HTTP `Host:` value: IPv6 literals in brackets (RFC 9110).
func hostHeader(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

/// Why a connection failed, and what to look at, by errno: an unreachable network is a routing
/// question, not a sign that nothing listens.
func connectFailure(_ e: Int32, host: String, refused: String?) -> String {
    let kernel = systemMessage(e)
    switch e {
    case ENETUNREACH, EHOSTUNREACH:
        return "\(kernel); this host has no route to \(host): check the address and `ip route get \(host)`"
    case ECONNREFUSED:
        return
            "\(kernel); nothing listens on that port: check that rsagent run serves it (load.http, load.agent_check or test_service in its profile)"
    case ETIMEDOUT:
        return "\(kernel); no answer at all: the host is down or a firewall drops the connection"
            + (refused.map { ", or \($0) does not admit this host" } ?? "")
    default:
        return kernel
    }
}

func connectTCP(host: String, port: Int, deadline: Double, what: String, refused: String?) throws -> Int32 {
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
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let fd = socket(a.pointee.ai_family, type, 0)
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
        operation: what, errno: lastErrno, reason: connectFailure(lastErrno, host: host, refused: refused))
}

/// Polls for input until `deadline`; false on timeout.
func waitReadable(_ fd: Int32, until deadline: Double, what: String) throws -> Bool {
    while true {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let left = Int32(max(0, (deadline - monotonicSeconds()) * 1000))
        let rc = poll(&pfd, 1, left)
        if rc < 0 && errno == EINTR { continue }
        if rc < 0 { throw SystemError.current(what) }
        return rc == 1
    }
}
