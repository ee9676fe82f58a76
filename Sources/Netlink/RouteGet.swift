internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// A route lookup question: where would the kernel send a packet to `to` (from `from`,
/// arriving on `iif`, or forced out of `oif`)?
public struct RouteQuery: Sendable, Hashable {
    public var to: IPAddress
    public var from: IPAddress?
    public var iif: InterfaceIndex?
    public var oif: InterfaceIndex?
    public init(to: IPAddress, from: IPAddress? = nil, iif: InterfaceIndex? = nil, oif: InterfaceIndex? = nil) {
        self.to = to; self.from = from; self.iif = iif; self.oif = oif
    }
}

/// The kernel's answer to a `RouteQuery`.
public struct RouteLookup: Sendable, Hashable, Codable {
    /// Route type.
    public enum Kind: String, Sendable, Codable {
        case unicast, local, broadcast, anycast, multicast, blackhole, unreachable, prohibit, throwRoute = "throw", nat,
            other
    }
    public var kind: Kind
    /// Output interface (`oif`); for local routes, `lo`.
    public var oif: InterfaceIndex?
    public var gateway: IPAddress?
    /// Preferred source (`src`).
    public var preferredSource: IPAddress?
    /// Routing table id; note the kernel reports 254 even for local routes.
    public var table: UInt32

    public init(kind: Kind, oif: InterfaceIndex?, gateway: IPAddress?, preferredSource: IPAddress?, table: UInt32) {
        self.kind = kind
        self.oif = oif
        self.gateway = gateway
        self.preferredSource = preferredSource
        self.table = table
    }
}

extension RouteSocket {
    /// Asks the kernel where a packet would go.
    /// Equivalent to: `ip route get TO [from FROM] [iif DEV] [oif DEV]`.
    /// With `iif`, the kernel runs the input path, reverse-path filtering included: a strict
    /// `rp_filter` rejection comes back with no extended ack as `EINVAL` (Linux 6.18) or `EXDEV`
    /// "Invalid cross-device link" (Debian's 6.1, seen in tests/vm) — libnl folds EXDEV into
    /// `NLE_FAILURE`, so read `NetlinkError.errno`.
    public func routeGet(_ q: RouteQuery) throws -> RouteLookup {
        var what = "ip route get \(q.to)"
        if let f = q.from { what += " from \(f)" }
        if let i = q.iif { what += " iif #\(i.rawValue)" }
        if let o = q.oif { what += " oif #\(o.rawValue)" }
        guard let msg = nlmsg_alloc_simple(Int32(RTM_GETROUTE), 0) else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        var rt = rtmsg()
        rt.rtm_family = UInt8(q.to.family)
        rt.rtm_dst_len = UInt8(q.to.hostPrefixLength)
        if let f = q.from { rt.rtm_src_len = UInt8(f.hostPrefixLength) }
        _ = nlmsg_append(msg, &rt, MemoryLayout<rtmsg>.size, Int32(NLMSG_ALIGNTO))
        var dst = q.to.bytes
        _ = nla_put(msg, Int32(RTA_DST.rawValue), Int32(dst.count), &dst)
        if let f = q.from {
            var src = f.bytes
            _ = nla_put(msg, Int32(RTA_SRC.rawValue), Int32(src.count), &src)
        }
        if let i = q.iif { _ = nla_put_u32(msg, Int32(RTA_IIF.rawValue), UInt32(i.rawValue)) }
        if let o = q.oif { _ = nla_put_u32(msg, Int32(RTA_OIF.rawValue), UInt32(o.rawValue)) }

        var answer: RouteLookup?
        try transact(msg, operation: what) { hdr in
            guard hdr.pointee.nlmsg_type == UInt16(RTM_NEWROUTE) else { return }
            var route: OpaquePointer?
            guard rtnl_route_parse(hdr, &route) >= 0, let route else { return }
            defer { rtnl_route_put(route) }
            var oif: InterfaceIndex?
            var gw: IPAddress?
            if rtnl_route_get_nnexthops(route) > 0, let nh = rtnl_route_nexthop_n(route, 0) {
                let i = rtnl_route_nh_get_ifindex(nh)
                if i > 0 { oif = InterfaceIndex(rawValue: i) }
                gw = ipAddress(of: rtnl_route_nh_get_gateway(nh))
            }
            answer = RouteLookup(
                kind: Self.kind(rtnl_route_get_type(route)), oif: oif, gateway: gw,
                preferredSource: ipAddress(of: rtnl_route_get_pref_src(route)),
                table: rtnl_route_get_table(route))
        }
        guard let answer else { throw NetlinkError(operation: what, errno: ENODATA) }
        return answer
    }

    static func kind(_ t: UInt8) -> RouteLookup.Kind {
        switch Int(t) {
        case RTN_UNICAST: return .unicast
        case RTN_LOCAL: return .local
        case RTN_BROADCAST: return .broadcast
        case RTN_ANYCAST: return .anycast
        case RTN_MULTICAST: return .multicast
        case RTN_BLACKHOLE: return .blackhole
        case RTN_UNREACHABLE: return .unreachable
        case RTN_PROHIBIT: return .prohibit
        case RTN_THROW: return .throwRoute
        case RTN_NAT: return .nat
        default: return .other
        }
    }
}

extension RouteSocket {
    /// The output interface of the main table's default route for `family` (`AF_INET` or
    /// `AF_INET6`), lowest metric first; nil when there is none.
    /// Equivalent to: `ip route show default` (`ip -6 route show default`).
    /// A dump, not a route-get of some far address: that address could be local, or sit
    /// under a more specific route.
    public func defaultRouteInterface(family: Int32) throws -> InterfaceIndex? {
        try retryingInterruptedDump { try findDefaultRouteInterface(family: family) }
    }

    private func findDefaultRouteInterface(family: Int32) throws -> InterfaceIndex? {
        // The local table holds a route per address (10,000 VIPs, 10,000 routes): with strict
        // checking (Linux ≥ 4.20) on a socket of its own, the kernel dumps the main table only.
        // Elsewhere this socket dumps every table; the header checks below filter either way.
        guard let strict = mainTableSocket else { return try defaultRoute(family: family, mainTableOnly: false) }
        do {
            return try strict.defaultRoute(family: family, mainTableOnly: true)
        } catch let e as NetlinkError where e.errno == EINVAL {
            return try defaultRoute(family: family, mainTableOnly: false)
        }
    }

    /// A second socket with strict dump checking, made on first use and kept (nil where the
    /// kernel has no strict checking): strict checking on this socket would apply to all its
    /// dumps, whose requests libnl builds.
    static func strictSocket() -> RouteSocket? {
        guard let s = try? RouteSocket() else { return nil }
        var on: Int32 = 1
        let ok = setsockopt(
            nl_socket_get_fd(s.sock), 270 /* SOL_NETLINK */, 12 /* NETLINK_GET_STRICT_CHK */, &on,
            socklen_t(MemoryLayout<Int32>.size))
        return ok == 0 ? s : nil
    }

    private func defaultRoute(family: Int32, mainTableOnly: Bool) throws -> InterfaceIndex? {
        guard let msg = nlmsg_alloc_simple(Int32(RTM_GETROUTE), NLM_F_DUMP) else {
            throw NetlinkError(operation: "ip route show default", errno: ENOMEM)
        }
        var rt = rtmsg()
        rt.rtm_family = UInt8(family)
        if mainTableOnly { rt.rtm_table = UInt8(RT_TABLE_MAIN.rawValue) }
        _ = nlmsg_append(msg, &rt, MemoryLayout<rtmsg>.size, Int32(NLMSG_ALIGNTO))
        var best: (metric: UInt32, oif: InterfaceIndex)?
        // Only main-table unicast routes to 0/0 are handed to libnl's parser. Through
        // `transact`, not `dump`: libnl must see the answer to keep its sequence numbers in step
        // for the next request on the socket.
        try transact(msg, operation: "ip route show default") { hdr in
            guard hdr.pointee.nlmsg_type == UInt16(RTM_NEWROUTE) else { return }
            let head = nlmsg_data(hdr).load(as: rtmsg.self)
            guard head.rtm_dst_len == 0, head.rtm_table == UInt8(RT_TABLE_MAIN.rawValue),
                head.rtm_type == UInt8(RTN_UNICAST)
            else { return }
            var parsed: OpaquePointer?
            guard rtnl_route_parse(hdr, &parsed) >= 0, let route = parsed else { return }
            defer { rtnl_route_put(route) }
            guard rtnl_route_get_nnexthops(route) > 0, let nh = rtnl_route_nexthop_n(route, 0) else { return }
            let oif = rtnl_route_nh_get_ifindex(nh)
            let metric = rtnl_route_get_priority(route)
            if oif > 0 && metric < best?.metric ?? .max { best = (metric, InterfaceIndex(rawValue: oif)) }
        }
        return best?.oif
    }
}
