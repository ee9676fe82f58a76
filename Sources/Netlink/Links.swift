internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// A kernel interface index (`ifindex`).
public struct InterfaceIndex: RawRepresentable, Hashable, Sendable, Codable, Comparable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static func < (l: Self, r: Self) -> Bool { l.rawValue < r.rawValue }
}

/// A network device as the kernel reports it (`ip -d link show`).
public struct Link: Hashable, Sendable, Codable {
    public var index: InterfaceIndex
    public var name: String
    /// `IFLA_INFO_KIND`: "dummy", "ipip", "veth", "bridge"…; nil for devices without one (lo, eth).
    public var kind: String?
    /// The administrative `IFF_UP` flag (what `ip link set up` sets).
    public var isUp: Bool
    /// `IFF_LOOPBACK`.
    public var isLoopback: Bool
    /// `IFF_NOARP`: the device never answers ARP (lo, dummy, tunl0).
    public var isNoARP: Bool
    public var mtu: Int
    /// `IFLA_IFALIAS` (`ip link set DEV alias TEXT`); rsagent marks devices it creates.
    public var alias: String?
    /// The hardware address, `aa:bb:cc:dd:ee:ff`, when the device has a six-byte one.
    public var mac: String?
    /// Tunnel settings of the kinds rsagent configures (`ip6tnl`, `gre`, `ip6gre`).
    public var tunnel: TunnelParameters?

    public init(
        index: InterfaceIndex, name: String, kind: String? = nil, isUp: Bool = true,
        isLoopback: Bool = false, isNoARP: Bool = false, mtu: Int = 1500, alias: String? = nil, mac: String? = nil
    ) {
        self.index = index; self.name = name; self.kind = kind; self.isUp = isUp
        self.isLoopback = isLoopback; self.isNoARP = isNoARP; self.mtu = mtu; self.alias = alias; self.mac = mac
    }
}

/// What `ip -d link show` prints of a tunnel that rsagent reads back.
public struct TunnelParameters: Hashable, Sendable, Codable {
    /// `ip6tnl`: the inner protocol (`IFLA_IPTUN_PROTO`: 0 any, 4 ip4ip6, 41 ip6ip6).
    public var proto: Int?
    /// GRE: the device it is bound to (`IFLA_GRE_LINK`), 0 for none.
    public var link: Int32 = 0
    /// GRE: arriving packets must carry a checksum (`icsum`, `GRE_CSUM` in `IFLA_GRE_IFLAGS`).
    public var inputChecksum = false
    /// Packets it has decapsulated (`rx_packets`): a packet the tunnel refuses is not counted.
    public var received: UInt64 = 0
    public init(proto: Int? = nil, link: Int32 = 0, inputChecksum: Bool = false, received: UInt64 = 0) {
        self.proto = proto; self.link = link; self.inputChecksum = inputChecksum; self.received = received
    }
}

/// `GRE_CSUM` as the kernel keeps it in `IFLA_GRE_IFLAGS`: big-endian (a macro Swift cannot import).
let greChecksumFlag = UInt16(0x8000).bigEndian

/// The tunnel settings of `l`, read only for the kinds whose libnl accessors accept it (the
/// others complain on stderr).
func tunnelParameters(_ l: OpaquePointer, kind: String?) -> TunnelParameters? {
    let received = rtnl_link_get_stat(l, RTNL_LINK_RX_PACKETS)
    switch kind {
    case "ip6tnl": return TunnelParameters(proto: Int(rtnl_link_ip6_tnl_get_proto(l)), received: received)
    case "gre":
        return TunnelParameters(
            link: Int32(bitPattern: rtnl_link_ipgre_get_link(l)),
            inputChecksum: rtnl_link_ipgre_get_iflags(l) & greChecksumFlag != 0, received: received)
    case "ip6gre":
        var link: UInt32 = 0, flags: UInt16 = 0
        _ = rtnl_link_ip6gre_get_link(l, &link)
        _ = rtnl_link_ip6gre_get_iflags(l, &flags)
        return TunnelParameters(
            link: Int32(bitPattern: link), inputChecksum: flags & greChecksumFlag != 0, received: received)
    default: return nil
    }
}

extension RouteSocket {
    /// All links. Equivalent to: `ip -d link show`.
    public func links() throws -> [Link] {
        try retryingInterruptedDump { try dumpLinks() }
    }

    private func dumpLinks() throws -> [Link] {
        var cache: OpaquePointer?
        let rc = rtnl_link_alloc_cache(sock, AF_UNSPEC, &cache)
        guard rc >= 0, let cache else {
            throw NetlinkError(operation: "ip link show", errno: 0, libnlCode: -rc)
        }
        defer { nl_cache_free(cache) }
        var out: [Link] = []
        var obj = nl_cache_get_first(cache)
        while let o = obj {
            let l = o
            let flags = rtnl_link_get_flags(l)
            let kind = rtnl_link_get_type(l).map { String(cString: $0) }
            var link =
                Link(
                    index: InterfaceIndex(rawValue: rtnl_link_get_ifindex(l)),
                    name: rtnl_link_get_name(l).map { String(cString: $0) } ?? "?",
                    kind: kind,
                    isUp: flags & UInt32(IFF_UP) != 0,
                    isLoopback: flags & UInt32(IFF_LOOPBACK) != 0,
                    isNoARP: flags & UInt32(IFF_NOARP) != 0,
                    mtu: Int(rtnl_link_get_mtu(l)),
                    alias: rtnl_link_get_ifalias(l).map { String(cString: $0) }, mac: macText(rtnl_link_get_addr(l)))
            link.tunnel = tunnelParameters(l, kind: kind)
            out.append(link)
            obj = nl_cache_get_next(o)
        }
        return out.sorted { $0.index < $1.index }
    }

    /// Creates a link of `kind` (dummy…). Equivalent to: `ip link add NAME type KIND`.
    /// The kernel autoloads `rtnl-link-KIND`; without the module it answers `EOPNOTSUPP`
    /// "Unknown device type".
    public func createLink(name: String, kind: String) throws {
        guard let link = rtnl_link_alloc() else { throw NetlinkError(operation: "ip link add", errno: ENOMEM) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        _ = rtnl_link_set_type(link, kind)
        var msg: OpaquePointer?
        let rc = rtnl_link_build_add_request(link, NLM_F_CREATE | NLM_F_EXCL, &msg)
        guard rc >= 0, let msg else {
            throw NetlinkError(operation: "ip link add \(name) type \(kind)", errno: 0, libnlCode: -rc)
        }
        try transact(msg, operation: "ip link add \(name) type \(kind)")
    }

    /// Creates a GRE tunnel bound to the device `link`, optionally requiring checksums on what
    /// arrives. Equivalent to: `ip link add NAME type gre|ip6gre dev LINK [icsum]`.
    public func createGRETunnel(name: String, ipv6: Bool, link: InterfaceIndex, linkName: String, checksums: Bool)
        throws
    {
        let what = "ip link add \(name) type \(ipv6 ? "ip6gre" : "gre") dev \(linkName)\(checksums ? " icsum" : "")"
        guard let l = ipv6 ? rtnl_link_ip6gre_alloc() : rtnl_link_ipgre_alloc() else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        defer { rtnl_link_put(l) }
        rtnl_link_set_name(l, name)
        let flags = checksums ? greChecksumFlag : 0
        if ipv6 {
            _ = rtnl_link_ip6gre_set_link(l, UInt32(bitPattern: link.rawValue))
            _ = rtnl_link_ip6gre_set_iflags(l, flags)
        } else {
            _ = rtnl_link_ipgre_set_link(l, UInt32(bitPattern: link.rawValue))
            _ = rtnl_link_ipgre_set_iflags(l, flags)
        }
        var msg: OpaquePointer?
        let rc = rtnl_link_build_add_request(l, NLM_F_CREATE | NLM_F_EXCL, &msg)
        guard rc >= 0, let msg else { throw NetlinkError(operation: what, errno: 0, libnlCode: -rc) }
        try transact(msg, operation: what)
    }

    /// Sets the inner protocol of an ip6tnl device (0: any). Equivalent to:
    /// `ip -6 tunnel change NAME mode any|ip4ip6|ip6ip6`. Through the tunnel ioctl, not netlink:
    /// before Linux 6.17 the kernel refuses netlink changes to the fallback `ip6tnl0`.
    public static func setIP6TunnelMode(name: String, proto: Int) throws {
        let rc = rs_ip6tnl_set_proto(name, UInt8(proto))
        if rc < 0 {
            let mode = [0: "any", 4: "ip4ip6", 41: "ip6ip6"][proto] ?? "\(proto)"
            throw NetlinkError(operation: "ip -6 tunnel change \(name) mode \(mode)", errno: -rc)
        }
    }

    /// Deletes a link. Equivalent to: `ip link del NAME`.
    public func deleteLink(_ index: InterfaceIndex, name: String) throws {
        guard let link = rtnl_link_alloc() else { throw NetlinkError(operation: "ip link del", errno: ENOMEM) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_ifindex(link, index.rawValue)
        var msg: OpaquePointer?
        let rc = rtnl_link_build_delete_request(link, &msg)
        guard rc >= 0, let msg else {
            throw NetlinkError(operation: "ip link del \(name)", errno: 0, libnlCode: -rc)
        }
        try transact(msg, operation: "ip link del \(name)")
    }

    /// Sets the administrative state, and optionally the alias, of a link.
    /// Equivalent to: `ip link set NAME up|down [alias TEXT]`.
    public func setLink(_ index: InterfaceIndex, name: String, up: Bool? = nil, alias: String? = nil) throws {
        guard let orig = rtnl_link_alloc(), let change = rtnl_link_alloc() else {
            throw NetlinkError(operation: "ip link set", errno: ENOMEM)
        }
        defer { rtnl_link_put(orig); rtnl_link_put(change) }
        rtnl_link_set_ifindex(orig, index.rawValue)
        var what = "ip link set \(name)"
        if let up {
            if up { rtnl_link_set_flags(change, UInt32(IFF_UP)) } else { rtnl_link_unset_flags(change, UInt32(IFF_UP)) }
            what += up ? " up" : " down"
        }
        if let alias {
            rtnl_link_set_ifalias(change, alias)
            what += " alias \(alias)"
        }
        var msg: OpaquePointer?
        let rc = rtnl_link_build_change_request(orig, change, 0, &msg)
        guard rc >= 0, let msg else { throw NetlinkError(operation: what, errno: 0, libnlCode: -rc) }
        try transact(msg, operation: what)
    }
}

/// `aa:bb:cc:dd:ee:ff` for a six-byte link-layer address; nil otherwise.
func macText(_ a: OpaquePointer?) -> String? {
    guard let a, nl_addr_get_len(a) == 6, let p = nl_addr_get_binary_addr(a) else { return nil }
    let hex = Array("0123456789abcdef")
    return UnsafeRawBufferPointer(start: p, count: 6).map { String([hex[Int($0 >> 4)], hex[Int($0 & 15)]]) }
        .joined(separator: ":")
}
