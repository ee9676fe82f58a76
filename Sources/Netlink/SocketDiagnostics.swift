internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// A socket that is waiting for clients: a TCP listener or a bound, unconnected UDP socket.
public struct ListeningSocket: Hashable, Sendable, Codable {
    public enum Proto: String, Sendable, Codable { case tcp, udp }
    public var proto: Proto
    public var address: IPAddress
    public var port: Int
    public init(proto: Proto, address: IPAddress, port: Int) {
        self.proto = proto
        self.address = address
        self.port = port
    }
    /// `IPV6_V6ONLY` unknown here: an IPv6 wildcard listener usually takes IPv4 too.
    public var isWildcard: Bool { address.isUnspecified }
}

/// The kernel's socket diagnostics (`NETLINK_SOCK_DIAG`, inet_diag), the interface `ss` uses:
/// listeners come from the kernel with the state filter applied there, not from `/proc/net/tcp`.
public final class SocketDiagnostics {
    let socket: RouteSocket

    public init() throws { socket = try RouteSocket(netlinkProtocol: NETLINK_SOCK_DIAG) }

    /// Listening TCP sockets and bound UDP sockets, IPv4 and IPv6.
    /// Equivalent to: `ss -ltn; ss -lun`.
    public func listeners() throws -> [ListeningSocket] {
        var out: [ListeningSocket] = []
        for family in [AF_INET, AF_INET6] {
            // TCP in LISTEN; UDP sockets that are not connected sit in TCP_CLOSE.
            out += try dump(family: family, proto: UInt8(IPPROTO_TCP), states: 1 << 10, as: .tcp)
            out += try dump(family: family, proto: UInt8(IPPROTO_UDP), states: 1 << 7, as: .udp)
        }
        return out
    }

    /// Established TCP connections whose local port is `port`, counted per local address, with
    /// the state and the port filtered in the kernel (an `inet_diag` bytecode program, as `ss`
    /// compiles `sport = :PORT`), so only matching sockets cross into user space. For IPv4
    /// (`ipv6` false) the IPv6 sockets are dumped too: a dual-stack listener (`[::]:80`, nginx's
    /// `ipv6only=off`, Java, Go) holds its IPv4 clients on IPv6 sockets with v4-mapped
    /// addresses (`::ffff:192.0.2.100`), counted here under the IPv4 address.
    /// Equivalent to: `ss -Htn state established '( sport = :PORT )'`, counted by local address.
    public func establishedCounts(ipv6: Bool, port: Int) throws -> [IPAddress: Int] {
        try established(ipv6: ipv6, port: port) { id, _ in id.idiag_src }
    }

    /// The same connections counted per client (peer) address, only those whose local address
    /// is in `local`: who is still connected to a service.
    public func establishedClients(ipv6: Bool, port: Int, local: Set<IPAddress>) throws -> [IPAddress: Int] {
        let sources = Set(local.map(\.bytes) + local.filter(\.isIPv4).map { Self.v4MappedPrefix + $0.bytes })
        return try established(ipv6: ipv6, port: port) { id, family in
            let src = withUnsafeBytes(of: id.idiag_src) { Array($0.prefix(family == AF_INET ? 4 : 16)) }
            return sources.contains(src) ? id.idiag_dst : nil
        }
    }

    /// `::ffff:0:0/96`: an IPv4 address as an IPv6 socket sees it.
    static let v4MappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xff, 0xff]

    /// Dumps of the established connections on `port` (IPv6 only, or IPv4 and IPv6), counted by
    /// the address `key` picks from each socket's id and family (nil: not counted).
    private func established(
        ipv6: Bool, port: Int, key pick: (inet_diag_sockid, Int32) -> (UInt32, UInt32, UInt32, UInt32)?
    ) throws -> [IPAddress: Int] {
        var counts: [IPAddress: Int] = [:]
        for family in ipv6 ? [AF_INET6] : [AF_INET, AF_INET6] {
            // Counted by the raw 16 address bytes (two words), turned into addresses once at the end.
            var byWords: [SIMD2<UInt64>: Int] = [:]
            try dumpEstablished(family: family, port: port) { id in
                guard let address = pick(id, family) else { return }
                let key = withUnsafeBytes(of: address) {
                    SIMD2($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self))
                }
                byWords[key, default: 0] += 1
            }
            for (key, n) in byWords {
                var bytes = withUnsafeBytes(of: key) { Array($0.prefix(family == AF_INET ? 4 : 16)) }
                if family == AF_INET6 && bytes.starts(with: Self.v4MappedPrefix) { bytes = Array(bytes.suffix(4)) }
                if let a = IPAddress(bytes: bytes) { counts[a, default: 0] += n }
            }
        }
        return counts
    }

    /// One dump of the established TCP sockets of `family` whose local port is `port`.
    private func dumpEstablished(family: Int32, port: Int, _ each: (inet_diag_sockid) -> Void) throws {
        let what = "ss -Htn\(family == AF_INET6 ? 6 : 4) state established '( sport = :\(port) )'"
        guard let msg = nlmsg_alloc_simple(Int32(SOCK_DIAG_BY_FAMILY), NLM_F_DUMP) else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        var req = inet_diag_req_v2()
        req.sdiag_family = UInt8(family)
        req.sdiag_protocol = UInt8(IPPROTO_TCP)
        req.idiag_states = 1 << 1  // TCP_ESTABLISHED
        req.id.idiag_sport = UInt16(port).bigEndian  // checked by the kernel's walk before the bytecode
        _ = nlmsg_append(msg, &req, MemoryLayout<inet_diag_req_v2>.size, Int32(NLMSG_ALIGNTO))
        // sport >= PORT && sport <= PORT. Each test is an op plus a second op whose `no` field
        // carries the port; `yes` steps to the next test, `no` jumps past the end (+4), which
        // the kernel reads as "reject".
        let p = UInt16(port)
        var program: [inet_diag_bc_op] = [
            inet_diag_bc_op(code: UInt8(INET_DIAG_BC_S_GE), yes: 8, no: 20), inet_diag_bc_op(code: 0, yes: 0, no: p),
            inet_diag_bc_op(code: UInt8(INET_DIAG_BC_S_LE), yes: 8, no: 12), inet_diag_bc_op(code: 0, yes: 0, no: p),
        ]
        let rc = program.withUnsafeMutableBytes {
            nla_put(msg, Int32(INET_DIAG_REQ_BYTECODE), Int32($0.count), $0.baseAddress)
        }
        if rc < 0 {
            nlmsg_free(msg)
            throw NetlinkError(operation: what, errno: 0, libnlCode: -rc)
        }
        try socket.dump(msg, operation: what) { hdr in
            guard hdr.pointee.nlmsg_type == UInt16(SOCK_DIAG_BY_FAMILY) else { return }
            each(nlmsg_data(hdr).assumingMemoryBound(to: inet_diag_msg.self).pointee.id)
        }
    }

    private func dump(family: Int32, proto: UInt8, states: UInt32, as kind: ListeningSocket.Proto) throws
        -> [ListeningSocket]
    {
        let what = "ss -l\(kind == .tcp ? "t" : "u")n -\(family == AF_INET ? 4 : 6)"
        guard let msg = nlmsg_alloc_simple(Int32(SOCK_DIAG_BY_FAMILY), NLM_F_DUMP) else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        var req = inet_diag_req_v2()
        req.sdiag_family = UInt8(family)
        req.sdiag_protocol = proto
        req.idiag_states = states
        _ = nlmsg_append(msg, &req, MemoryLayout<inet_diag_req_v2>.size, Int32(NLMSG_ALIGNTO))
        var out: [ListeningSocket] = []
        try socket.transact(msg, operation: what) { hdr in
            guard hdr.pointee.nlmsg_type == UInt16(SOCK_DIAG_BY_FAMILY) else { return }
            let m = nlmsg_data(hdr).load(as: inet_diag_msg.self)
            let port = Int(UInt16(bigEndian: m.id.idiag_sport))
            let bytes = withUnsafeBytes(of: m.id.idiag_src) { Array($0.prefix(family == AF_INET ? 4 : 16)) }
            if let a = IPAddress(bytes: bytes) { out.append(ListeningSocket(proto: kind, address: a, port: port)) }
        }
        return out
    }
}
