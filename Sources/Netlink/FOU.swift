internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// A FOU receive port: where the kernel takes GUE (or plain foo-over-UDP) packets off UDP and
/// hands what is inside to the tunnel devices.
public struct FOUReceivePort: Hashable, Sendable {
    public var port: Int
    /// `AF_INET` or `AF_INET6`: the outer header's family.
    public var ipv6: Bool
    /// GUE (`FOU_ENCAP_GUE`) or direct (`FOU_ENCAP_DIRECT`).
    public var gue: Bool

    public init(port: Int, ipv6: Bool, gue: Bool = true) {
        self.port = port
        self.ipv6 = ipv6
        self.gue = gue
    }
}

/// The kernel's `fou` generic-netlink family, which libnl does not cover, spoken with libnl's
/// message and socket machinery: a generic-netlink request is a netlink message whose type is
/// the family's id (asked of the `nlctrl` family by name), a 4-byte header (command, version)
/// and attributes.
/// Equivalent to: `ip [-6] fou add|del port N gue`, `ip fou show`.
public final class FOUSocket {
    let socket: RouteSocket
    /// The `fou` family's id on this kernel.
    public let family: UInt16

    /// Finds the `fou` family; without the module (`modprobe fou`) the kernel has none.
    public init() throws {
        socket = try RouteSocket(netlinkProtocol: NETLINK_GENERIC)
        family = try Self.resolve(socket)
    }

    public func add(_ p: FOUReceivePort) throws {
        try send(Self.request(.add, family: family, p), operation: Self.command(.add, p))
    }

    public func delete(_ p: FOUReceivePort) throws {
        try send(Self.request(.delete, family: family, p), operation: Self.command(.delete, p))
    }

    /// Every receive port of this network namespace.
    public func ports() throws -> [FOUReceivePort] {
        let what = "ip fou show"
        guard let msg = Self.message(.get, family: family, flags: NLM_F_REQUEST | NLM_F_DUMP) else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        var out: [FOUReceivePort] = []
        // Attributes past the last one read here are skipped by the parser.
        let table = AttributeTable(maxType: Int(FOU_ATTR_TYPE))
        // Through libnl's receive loop (`transact`), not the raw `dump`: a handful of ports, and
        // libnl then counts the dump as answered, so the next add or delete on this socket is
        // not refused as "Message sequence number mismatch".
        try socket.transact(msg, operation: what) { hdr in
            guard Int32(hdr.pointee.nlmsg_type) == Int32(self.family),
                table.parse(hdr, headerSize: MemoryLayout<genlmsghdr>.size),
                let port = table[Int(FOU_ATTR_PORT)], let af = table[Int(FOU_ATTR_AF)]
            else { return }
            let type = table[Int(FOU_ATTR_TYPE)].map { nla_get_u8($0) } ?? UInt8(FOU_ENCAP_DIRECT)
            out.append(
                FOUReceivePort(
                    port: Int(UInt16(bigEndian: nla_get_u16(port))), ipv6: Int32(nla_get_u8(af)) == AF_INET6,
                    gue: type == UInt8(FOU_ENCAP_GUE)))
        }
        return out
    }

    enum Command: UInt8 {
        case add = 1, delete = 2, get = 3
    }

    /// `ip -6 fou add port 6080 gue`, for messages.
    static func command(_ c: Command, _ p: FOUReceivePort) -> String {
        "ip\(p.ipv6 ? " -6" : "") fou \(c == .add ? "add" : "del") port \(p.port)\(p.gue ? " gue" : " ipproto 4")"
    }

    /// The request's bytes as they go to the kernel (sequence number and port id still 0, as
    /// libnl fills them in when sending): golden-tested against the kernel's ABI.
    static func requestBytes(_ c: Command, family: UInt16, _ p: FOUReceivePort) -> [UInt8] {
        guard let msg = request(c, family: family, p) else { return [] }
        defer { nlmsg_free(msg) }
        let hdr = nlmsg_hdr(msg)!
        return Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(hdr), count: Int(hdr.pointee.nlmsg_len)))
    }

    /// Port (big-endian, as the kernel keeps it), address family, and GUE; deleting needs no type.
    static func request(_ c: Command, family: UInt16, _ p: FOUReceivePort) -> OpaquePointer? {
        guard let msg = message(c, family: family, flags: NLM_F_REQUEST | NLM_F_ACK) else { return nil }
        let af = UInt8(p.ipv6 ? AF_INET6 : AF_INET)
        guard nla_put_u16(msg, Int32(FOU_ATTR_PORT), UInt16(p.port).bigEndian) >= 0,
            nla_put_u8(msg, Int32(FOU_ATTR_AF), af) >= 0,
            c == .delete
                || nla_put_u8(msg, Int32(FOU_ATTR_TYPE), UInt8(p.gue ? FOU_ENCAP_GUE : FOU_ENCAP_DIRECT)) >= 0,
            c == .delete || p.gue || nla_put_u8(msg, Int32(FOU_ATTR_IPPROTO), UInt8(IPPROTO_IPIP)) >= 0
        else {
            nlmsg_free(msg)
            return nil
        }
        return msg
    }

    /// A generic-netlink message: the netlink header and the 4-byte `genlmsghdr`.
    static func message(_ c: Command, family: UInt16, flags: Int32) -> OpaquePointer? {
        message(command: c.rawValue, version: UInt8(FOU_GENL_VERSION), type: family, flags: flags)
    }

    static func message(command: UInt8, version: UInt8, type: UInt16, flags: Int32) -> OpaquePointer? {
        guard let msg = nlmsg_alloc_simple(Int32(type), flags) else { return nil }
        var genl = genlmsghdr(cmd: command, version: version, reserved: 0)
        guard nlmsg_append(msg, &genl, MemoryLayout<genlmsghdr>.size, Int32(NLMSG_ALIGNTO)) >= 0 else {
            nlmsg_free(msg)
            return nil
        }
        return msg
    }

    private func send(_ msg: OpaquePointer?, operation: String) throws {
        guard let msg else { throw NetlinkError(operation: operation, errno: ENOMEM) }
        try socket.transact(msg, operation: operation)
    }

    /// `CTRL_CMD_GETFAMILY` for "fou" → `CTRL_ATTR_FAMILY_ID`.
    static func resolve(_ socket: RouteSocket) throws -> UInt16 {
        let what = "looking up the kernel's fou generic-netlink family (the fou module)"
        guard
            let msg = message(
                command: UInt8(CTRL_CMD_GETFAMILY), version: 1, type: UInt16(GENL_ID_CTRL),
                flags: NLM_F_REQUEST | NLM_F_ACK)
        else { throw NetlinkError(operation: what, errno: ENOMEM) }
        guard nla_put_string(msg, Int32(CTRL_ATTR_FAMILY_NAME), FOU_GENL_NAME) >= 0 else {
            nlmsg_free(msg)
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        var id: UInt16?
        let table = AttributeTable(maxType: Int(CTRL_ATTR_FAMILY_ID))
        try socket.transact(msg, operation: what) { hdr in
            guard table.parse(hdr, headerSize: MemoryLayout<genlmsghdr>.size),
                let a = table[Int(CTRL_ATTR_FAMILY_ID)]
            else { return }
            id = nla_get_u16(a)
        }
        guard let id else { throw NetlinkError(operation: what, errno: ENOENT) }
        return id
    }
}
