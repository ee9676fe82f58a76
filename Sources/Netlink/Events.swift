internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// A change the kernel announced on the rtnetlink multicast groups.
public enum NetlinkEvent: Sendable, Equatable {
    /// `RTM_NEWADDR` (`ip monitor address`).
    case addressAdded(Address)
    /// `RTM_DELADDR`: someone (or something, like a network manager) removed an address. `by`
    /// is the netlink port id of the request that did it — by convention the requesting
    /// process's pid — or 0 when the kernel itself did (a device going away).
    case addressRemoved(Address, by: UInt32)
    /// `RTM_NEWLINK` / `RTM_DELLINK` (`ip monitor link`): a device appeared, changed or went away.
    case link(index: InterfaceIndex, name: String, isUp: Bool, removed: Bool)
    /// `RTM_NEWNETCONF` for IPv4: a per-device setting such as `rp_filter` changed; `index` is
    /// -1 for `all` and -2 for `default`. (`arp_*` changes raise no event at all.)
    case netconf(index: Int32, rpFilter: Int32?)
    /// The socket overflowed (`ENOBUFS`) and events were lost: re-read everything.
    case overrun
}

/// A socket subscribed to link, IPv4/IPv6 address and IPv4 netconf events.
/// Equivalent to: `ip monitor link address netconf`.
///
/// Not thread-safe; owned by one reader. `wait` blocks in `poll(2)` for at most `timeout`, so a
/// daemon can interleave events with periodic work and shutdown checks.
public final class EventSocket {
    let sock: OpaquePointer
    private let addressTable = AttributeTable(maxType: Int(rs_ifa_max()))
    private let linkTable = AttributeTable(maxType: Int(rs_ifla_max()))
    private let netconfTable = AttributeTable(maxType: Int(rs_netconfa_max()))

    /// - Parameter receiveBuffer: socket receive buffer in bytes; small values make overruns
    ///   easy to provoke in tests.
    public init(receiveBuffer: Int32 = 4 << 20) throws {
        guard let s = nl_socket_alloc() else { throw NetlinkError(operation: "ip monitor", errno: ENOMEM) }
        var rc = nl_connect(s, NETLINK_ROUTE)
        if rc >= 0 {
            for group in [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV4_NETCONF] {
                rc = nl_socket_add_membership(s, Int32(group.rawValue))
                if rc < 0 { break }
            }
        }
        if rc >= 0 { rc = nl_socket_set_nonblocking(s) }
        if rc < 0 {
            nl_socket_free(s)
            throw NetlinkError(operation: "ip monitor link address netconf", errno: 0, libnlCode: -rc)
        }
        _ = nl_socket_set_buffer_size(s, receiveBuffer, 0)
        _ = nl_socket_set_msg_buf_size(s, 32768)
        sock = s
    }

    deinit { nl_socket_free(sock) }

    /// The descriptor, for callers that poll several sources.
    public var fileDescriptor: Int32 { nl_socket_get_fd(sock) }

    /// Waits up to `timeout` seconds for events and returns all that are queued (empty on
    /// timeout). An overflow is reported as `.overrun`, after the events read before it.
    public func wait(timeout: Double) throws -> [NetlinkEvent] {
        var pfd = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        let ms = Int32(max(0, min(timeout, 3600)) * 1000)
        let ready = poll(&pfd, 1, ms)
        if ready < 0 {
            if errno == EINTR { return [] }
            throw NetlinkError(operation: "waiting for netlink events", errno: errno)
        }
        if ready == 0 { return [] }
        return try drain()
    }

    /// Reads every queued event without blocking.
    public func drain() throws -> [NetlinkEvent] {
        let collector = Collector(events: self)
        guard let cb = nl_cb_alloc(NL_CB_DEFAULT) else { throw NetlinkError(operation: "ip monitor", errno: ENOMEM) }
        defer { nl_cb_put(cb) }
        let arg = Unmanaged.passUnretained(collector).toOpaque()
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, eventValid, arg)
        // Events carry no sequence number to match (a fresh callback set brings the check back).
        nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, acceptAny, nil)
        while true {
            let rc = withExtendedLifetime(collector) { nl_recvmsgs(sock, cb) }
            if rc >= 0 { continue }
            // libnl maps ENOBUFS (an overrun) to NLE_NOMEM and EAGAIN (nothing left) to NLE_AGAIN.
            if -rc == NLE_AGAIN { break }
            if -rc == NLE_NOMEM { collector.out.append(.overrun); continue }
            throw NetlinkError(operation: "reading netlink events", errno: 0, libnlCode: -rc)
        }
        return collector.out
    }

    func parse(_ hdr: UnsafeMutablePointer<nlmsghdr>) -> NetlinkEvent? {
        switch Int32(hdr.pointee.nlmsg_type) {
        case Int32(RTM_NEWADDR), Int32(RTM_DELADDR):
            guard let a = RouteSocket.parseAddress(hdr, table: addressTable) else { return nil }
            return hdr.pointee.nlmsg_type == UInt16(RTM_NEWADDR)
                ? .addressAdded(a) : .addressRemoved(a, by: hdr.pointee.nlmsg_pid)
        case Int32(RTM_NEWLINK), Int32(RTM_DELLINK):
            let ifi = nlmsg_data(hdr).load(as: ifinfomsg.self)
            guard linkTable.parse(hdr, headerSize: rs_ifinfomsg_size()) else { return nil }
            let name = linkTable[Int(IFLA_IFNAME)].map(attributeString) ?? "#\(ifi.ifi_index)"
            return .link(
                index: InterfaceIndex(rawValue: ifi.ifi_index), name: name,
                isUp: ifi.ifi_flags & UInt32(IFF_UP) != 0, removed: hdr.pointee.nlmsg_type == UInt16(RTM_DELLINK))
        case Int32(RTM_NEWNETCONF):
            guard netconfTable.parse(hdr, headerSize: MemoryLayout<netconfmsg>.size),
                let i = netconfTable[Int(rs_netconfa_ifindex())]
            else { return nil }
            let rp = netconfTable[Int(rs_netconfa_rp_filter())].map { Int32(bitPattern: nla_get_u32($0)) }
            return .netconf(index: Int32(bitPattern: nla_get_u32(i)), rpFilter: rp)
        default:
            return nil
        }
    }
}

private final class Collector {
    unowned let events: EventSocket
    var out: [NetlinkEvent] = []
    init(events: EventSocket) { self.events = events }
}

private let acceptAny: nl_recvmsg_msg_cb_t = { _, _ in Int32(NL_OK.rawValue) }

private let eventValid: nl_recvmsg_msg_cb_t = { msg, arg in
    let c = Unmanaged<Collector>.fromOpaque(arg!).takeUnretainedValue()
    if let e = c.events.parse(nlmsg_hdr(msg)) { c.out.append(e) }
    return Int32(NL_OK.rawValue)
}
