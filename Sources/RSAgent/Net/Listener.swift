import CSockets
import Logging
import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// One listening TCP socket of the daemon, and what its connections speak. Served by a
/// `Reactor`; every connection passes `gate` (with `allow`; empty allows all) first.
final class Listener {
    enum Conversation {
        /// One line on connect, then close (the HAProxy agent, the plain test service). What
        /// the peer sends is never read.
        case sayOneLine((Connection) -> String)
        /// HTTP/1.x read-only endpoints: one answer per request head (`HTTPConversation`).
        /// `repeatable`: the same request on the same connection always gets the same answer
        /// (the test service), so its bytes are kept and reused.
        case http(repeatable: Bool, answer: (HTTPRequestHead, Connection) -> HTTPAnswer)
    }

    let fd: Int32
    /// The gate's name for it: `http`, `agent_check`, `tcp`.
    let name: String
    let gate: ConnectionGate
    let allow: [CIDR]
    let conversation: Conversation

    /// The peer speaks first (HTTP): such connections get `TCP_NODELAY` and, at the cap, the
    /// one waiting longest for a complete request makes room. A server that writes once and
    /// closes gains nothing from either, and saves the system call and the bookkeeping.
    var conversational: Bool {
        if case .http = conversation { return true }
        return false
    }

    /// Binds `e` (backlog 1024, `SO_REUSEADDR`; `[::]` takes IPv4 too). A port that cannot be
    /// had is one sentence naming the profile `key`.
    init(
        endpoint e: Endpoint, key: String, name: String, gate: ConnectionGate, allow: [CIDR],
        conversation: Conversation
    ) throws {
        func failure(_ code: Int32) -> SystemError {
            SystemError(
                operation: "listening on \(e) for \(key)", errno: code,
                reason: "\(systemMessage(code)); choose another \(key) or stop what holds the port")
        }
        let fd = socket(
            e.host.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure(errno) }
        var one: Int32 = 1
        var zero: Int32 = 0
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if !e.host.isIPv4 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = SocketAddress(ip: e.host, port: e.port).withSockaddr { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 1024) == 0 else {
            let code = errno
            close(fd)
            throw failure(code)
        }
        self.fd = fd
        self.name = name
        self.gate = gate
        self.allow = allow
        self.conversation = conversation
    }

    deinit { close(fd) }

    func allows(_ peer: IPAddress?) -> Bool {
        allow.isEmpty || peer.map { a in allow.contains { $0.contains(a) } } == true
    }
}

/// An IP address and port as the kernel gives and takes them. IPv4-mapped IPv6
/// (`::ffff:192.0.2.1`, a peer of a `[::]` listener) is turned back into IPv4, so IPv4
/// networks match it and answers show it as IPv4.
struct SocketAddress {
    var ip: IPAddress
    var port: Int

    init(ip: IPAddress, port: Int) {
        self.ip = ip
        self.port = port
    }

    init?(_ storage: sockaddr_storage) {
        var s = storage
        switch Int32(s.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &s) { $0.load(as: sockaddr_in.self) }
            guard let ip = withUnsafeBytes(of: sin.sin_addr, { IPAddress(bytes: Array($0)) }) else { return nil }
            self.init(ip: ip, port: Int(UInt16(bigEndian: sin.sin_port)))
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: &s) { $0.load(as: sockaddr_in6.self) }
            let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
            guard let ip = IPAddress(bytes: mapped ? Array(bytes[12...]) : bytes) else { return nil }
            self.init(ip: ip, port: Int(UInt16(bigEndian: sin6.sin6_port)))
        default:
            return nil
        }
    }

    /// The socket's own address (`getsockname`) or its peer's (`getpeername`).
    init?(of fd: Int32, peer: Bool) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        guard rc == 0 else { return nil }
        self.init(storage)
    }

    var text: String { endpointText(ip: ip.description, port: port) }

    /// Calls `body` with the address as a `sockaddr` of the right family and its length.
    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        func call<S>(_ s: inout S) -> T {
            withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<S>.size)) }
            }
        }
        let raw = ip.bytes
        if ip.isIPv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = UInt16(port).bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: raw) }
            return call(&sin)
        }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = UInt16(port).bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: raw) }
        return call(&sin6)
    }
}
