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

    public init(
        index: InterfaceIndex, name: String, kind: String? = nil, isUp: Bool = true,
        isLoopback: Bool = false, isNoARP: Bool = false, mtu: Int = 1500, alias: String? = nil, mac: String? = nil
    ) {
        self.index = index; self.name = name; self.kind = kind; self.isUp = isUp
        self.isLoopback = isLoopback; self.isNoARP = isNoARP; self.mtu = mtu; self.alias = alias; self.mac = mac
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
            out.append(
                Link(
                    index: InterfaceIndex(rawValue: rtnl_link_get_ifindex(l)),
                    name: rtnl_link_get_name(l).map { String(cString: $0) } ?? "?",
                    kind: rtnl_link_get_type(l).map { String(cString: $0) },
                    isUp: flags & UInt32(IFF_UP) != 0,
                    isLoopback: flags & UInt32(IFF_LOOPBACK) != 0,
                    isNoARP: flags & UInt32(IFF_NOARP) != 0,
                    mtu: Int(rtnl_link_get_mtu(l)),
                    alias: rtnl_link_get_ifalias(l).map { String(cString: $0) }, mac: macText(rtnl_link_get_addr(l))))
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
