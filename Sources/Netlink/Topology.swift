internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// Building test networks (`rsagent lab`): veth pairs across namespaces, bridges, routes.
extension RouteSocket {
    /// Creates a veth pair, each end directly in the namespace given by an open
    /// `/run/netns/NAME` descriptor (nil: this socket's namespace).
    /// Equivalent to: `ip link add NAME netns A type veth peer name PEER netns B`.
    public func createVeth(name: String, in nsFD: Int32?, peer: String, peerIn peerFD: Int32?) throws {
        let what = "ip link add \(name) type veth peer name \(peer)"
        guard let link = rtnl_link_veth_alloc() else { throw NetlinkError(operation: what, errno: ENOMEM) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        if let nsFD { rtnl_link_set_ns_fd(link, nsFD) }
        guard let p = rtnl_link_veth_get_peer(link) else { throw NetlinkError(operation: what, errno: ENOMEM) }
        defer { rtnl_link_put(p) }
        rtnl_link_set_name(p, peer)
        if let peerFD { rtnl_link_set_ns_fd(p, peerFD) }
        var msg: OpaquePointer?
        let rc = rtnl_link_build_add_request(link, NLM_F_CREATE | NLM_F_EXCL, &msg)
        guard rc >= 0, let msg else { throw NetlinkError(operation: what, errno: 0, libnlCode: -rc) }
        try transact(msg, operation: what)
    }

    /// Enslaves a link to a bridge. Equivalent to: `ip link set NAME master BRIDGE`.
    public func setMaster(_ index: InterfaceIndex, name: String, master: InterfaceIndex, masterName: String) throws {
        let what = "ip link set \(name) master \(masterName)"
        guard let orig = rtnl_link_alloc(), let change = rtnl_link_alloc() else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        defer { rtnl_link_put(orig); rtnl_link_put(change) }
        rtnl_link_set_ifindex(orig, index.rawValue)
        rtnl_link_set_master(change, master.rawValue)
        var msg: OpaquePointer?
        let rc = rtnl_link_build_change_request(orig, change, 0, &msg)
        guard rc >= 0, let msg else { throw NetlinkError(operation: what, errno: 0, libnlCode: -rc) }
        try transact(msg, operation: what)
    }

    /// Adds a route in the main table through one gateway or, with several, a multipath route
    /// (ECMP). Equivalent to: `ip route add DST/PREFIX via GW` or
    /// `ip route add DST/PREFIX nexthop via GW1 nexthop via GW2`.
    public func addRoute(to destination: IPAddress, prefix: Int, via gateways: [IPAddress]) throws {
        let what =
            "ip route add \(destination)/\(prefix) "
            + gateways.map { (gateways.count > 1 ? "nexthop via " : "via ") + "\($0)" }.joined(separator: " ")
        try sendRoute(
            to: destination, prefix: prefix, nexthops: gateways.map { ($0, nil) }, flags: NLM_F_CREATE | NLM_F_EXCL,
            operation: what)
    }

    /// Sets the route to `destination` to exactly these weighted gateways (weight 1–256, the
    /// share of flows each gets), or, with none, to an `unreachable` route (senders get ICMP
    /// host unreachable at once). Replaces what was there. Equivalent to:
    /// `ip route replace DST/PREFIX nexthop via GW1 weight W1 nexthop via GW2 weight W2` or
    /// `ip route replace unreachable DST/PREFIX`.
    public func replaceRoute(to destination: IPAddress, prefix: Int, weighted gateways: [(IPAddress, Int)]) throws {
        let dst = "\(destination)/\(prefix)"
        let what =
            gateways.isEmpty
            ? "ip route replace unreachable \(dst)"
            : "ip route replace \(dst) " + gateways.map { "nexthop via \($0.0) weight \($0.1)" }.joined(separator: " ")
        try sendRoute(
            to: destination, prefix: prefix, nexthops: gateways.map { ($0.0, $0.1) },
            flags: NLM_F_CREATE | NLM_F_REPLACE, operation: what)
    }

    /// A static route in the main table through `nexthops` (a weight of nil: the default), or
    /// `unreachable` without any.
    private func sendRoute(
        to destination: IPAddress, prefix: Int, nexthops: [(IPAddress, Int?)], flags: Int32, operation what: String
    ) throws {
        guard let route = rtnl_route_alloc(), let d = makeNLAddr(destination, prefix: prefix) else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        defer { rtnl_route_put(route); nl_addr_put(d) }
        rtnl_route_set_family(route, UInt8(destination.family))
        _ = rtnl_route_set_dst(route, d)
        rtnl_route_set_table(route, UInt32(RT_TABLE_MAIN.rawValue))
        rtnl_route_set_protocol(route, UInt8(RTPROT_STATIC))
        rtnl_route_set_scope(route, UInt8(RT_SCOPE_UNIVERSE.rawValue))
        _ = rtnl_route_set_type(route, UInt8(nexthops.isEmpty ? RTN_UNREACHABLE : RTN_UNICAST))
        for (gw, weight) in nexthops {
            guard let nh = rtnl_route_nh_alloc(), let g = makeNLAddr(gw, prefix: gw.hostPrefixLength) else {
                throw NetlinkError(operation: what, errno: ENOMEM)
            }
            rtnl_route_nh_set_gateway(nh, g)
            nl_addr_put(g)
            // The kernel's field counts the weight from 0 (rtnh_hops = weight - 1), and libnl
            // passes its value through as it is.
            if let weight { rtnl_route_nh_set_weight(nh, UInt8(max(1, min(weight, 256)) - 1)) }
            rtnl_route_add_nexthop(route, nh)  // the route owns it from here
        }
        var msg: OpaquePointer?
        let rc = rtnl_route_build_add_request(route, flags, &msg)
        guard rc >= 0, let msg else { throw NetlinkError(operation: what, errno: 0, libnlCode: -rc) }
        try transact(msg, operation: what)
    }
}
