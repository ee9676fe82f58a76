internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// One rtnetlink socket (`NETLINK_ROUTE`), owned: freed in `deinit`.
///
/// Every request goes through `transact`, which sends one message and reads until the kernel's
/// ACK, `NLMSG_DONE` or error, capturing the raw errno and the extended-ack text that libnl's
/// own helpers would fold into an `NLE_*` code. One socket serves thousands of requests: the
/// cost of adding 10,000 addresses is then the kernel's, as with `ip -batch`.
public final class RouteSocket {
    let sock: OpaquePointer
    /// For `defaultRouteInterface`: the main table alone, filtered by the kernel.
    lazy var mainTableSocket: RouteSocket? = Self.strictSocket()

    public convenience init() throws { try self.init(netlinkProtocol: NETLINK_ROUTE) }

    /// This socket's netlink port id: the kernel puts it in the notifications that a change made
    /// through this socket causes (`nlmsg_pid`), which is how a remover is named.
    public var localPort: UInt32 { nl_socket_get_local_port(sock) }

    /// `NETLINK_ROUTE`, or `NETLINK_SOCK_DIAG` for `SocketDiagnostics`: same request machinery.
    init(netlinkProtocol: Int32) throws {
        guard let s = nl_socket_alloc() else {
            throw NetlinkError(operation: "opening a netlink socket", errno: ENOMEM)
        }
        let rc = nl_connect(s, netlinkProtocol)
        if rc < 0 {
            nl_socket_free(s)
            throw NetlinkError(
                operation: "connecting a netlink socket (protocol \(netlinkProtocol))", errno: 0, libnlCode: -rc)
        }
        _ = rs_enable_ext_ack(s)
        // Big socket buffer: a dump of 10,000 addresses arrives in bursts. And 32 KiB per read,
        // as iproute2 does (the kernel's per-skb maximum): the kernel re-walks a device's
        // address list for every batch of a dump, so fewer, larger batches cost it less.
        _ = nl_socket_set_buffer_size(s, 4 << 20, 1 << 20)
        _ = nl_socket_set_msg_buf_size(s, 32768)
        sock = s
    }

    deinit { nl_socket_free(sock) }

    /// Opens a socket, runs `body`, closes the socket.
    public static func with<T>(_ body: (RouteSocket) throws -> T) throws -> T {
        let s = try RouteSocket()
        return try body(s)
    }

    /// Sends `msg` (consumed) and reads until ACK/DONE/error; `onMessage` sees each data message.
    func transact(
        _ msg: OpaquePointer, operation: @autoclosure () -> String,
        onMessage: ((UnsafeMutablePointer<nlmsghdr>) -> Void)? = nil
    ) throws {
        defer { nlmsg_free(msg) }
        let exchange = Exchange(onMessage: onMessage)
        guard let cb = nl_cb_alloc(NL_CB_DEFAULT) else {
            throw NetlinkError(operation: operation(), errno: ENOMEM)
        }
        defer { nl_cb_put(cb) }
        let arg = Unmanaged.passUnretained(exchange).toOpaque()
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, exchangeValid, arg)
        nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, exchangeDone, arg)
        nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, exchangeDone, arg)
        nl_cb_err(cb, NL_CB_CUSTOM, exchangeError, arg)

        let sent = nl_send_auto(sock, msg)
        if sent < 0 {
            throw NetlinkError(operation: operation(), errno: 0, libnlCode: -sent)
        }
        try withExtendedLifetime(exchange) {
            while !exchange.done {
                let rc = nl_recvmsgs(sock, cb)
                if exchange.errno != 0 {
                    throw NetlinkError(
                        operation: operation(), errno: exchange.errno,
                        libnlCode: rc < 0 ? -rc : 0, extack: exchange.extack)
                }
                if rc < 0 {
                    throw NetlinkError(operation: operation(), errno: 0, libnlCode: -rc)
                }
            }
        }
    }
}

extension RouteSocket {
    /// Sends a dump request (`msg`, consumed) and hands each data message to `onMessage`,
    /// reading whole 32 KiB batches with `nl_recv` and walking them with `nlmsg_next`. For dumps
    /// of tens of thousands of messages (sockets): `transact`'s callbacks make libnl allocate
    /// and copy every message, which was a fifth of the time of a 19,000-socket dump.
    func dump(
        _ msg: OpaquePointer, operation: @autoclosure () -> String,
        onMessage: (UnsafeMutablePointer<nlmsghdr>) -> Void
    ) throws {
        defer { nlmsg_free(msg) }
        let sent = nl_send_auto(sock, msg)
        if sent < 0 { throw NetlinkError(operation: operation(), errno: 0, libnlCode: -sent) }
        while true {
            var peer = sockaddr_nl()
            var buffer: UnsafeMutablePointer<UInt8>?
            let n = nl_recv(sock, &peer, &buffer, nil)
            defer { free(buffer) }
            if n < 0 { throw NetlinkError(operation: operation(), errno: 0, libnlCode: -n) }
            guard n > 0, let buffer else { throw NetlinkError(operation: operation(), errno: ENODATA) }
            var remaining = n
            var hdr = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: nlmsghdr.self)
            while nlmsg_ok(hdr, remaining) != 0 {
                switch Int32(hdr.pointee.nlmsg_type) {
                case NLMSG_DONE: return
                case NLMSG_ERROR:
                    let e = nlmsg_data(hdr).assumingMemoryBound(to: nlmsgerr.self)
                    if e.pointee.error == 0 { return }
                    let text = rs_extack_message(e).map { String(cString: $0) }
                    throw NetlinkError(operation: operation(), errno: -e.pointee.error, extack: text)
                case NLMSG_NOOP, NLMSG_OVERRUN: break
                default: onMessage(hdr)
                }
                hdr = nlmsg_next(hdr, &remaining)
            }
        }
    }
}

extension RouteSocket {
    /// How often an interrupted dump is read before its error is passed on.
    static let dumpAttempts = 60

    /// Runs a dump again when the kernel flagged it inconsistent (`NLM_F_DUMP_INTR`: the list
    /// changed while it was being read — another program adding addresses, say). iproute2 warns
    /// and prints what it got; a planner must not act on a half-read list, so it reads again,
    /// backing off a little each time (1,000 VIPs being added keep a dump busy for a third of a
    /// second), for up to about three seconds.
    func retryingInterruptedDump<T>(attempts: Int = RouteSocket.dumpAttempts, _ body: () throws -> T) throws -> T {
        var attempt = 1
        while true {
            do { return try body() } catch let e as NetlinkError
                where e.libnlCode == NLE_DUMP_INTR && attempt < attempts
            {
                usleep(UInt32(min(attempt, 25)) * 2_000)
                attempt += 1
            }
        }
    }
}

/// Per-request state shared with the C callbacks through their `void *arg`.
final class Exchange {
    let onMessage: ((UnsafeMutablePointer<nlmsghdr>) -> Void)?
    var done = false
    var errno: Int32 = 0
    var extack: String?
    init(onMessage: ((UnsafeMutablePointer<nlmsghdr>) -> Void)?) { self.onMessage = onMessage }
}

private func exchange(_ arg: UnsafeMutableRawPointer?) -> Exchange {
    Unmanaged<Exchange>.fromOpaque(arg!).takeUnretainedValue()
}

private let exchangeValid: nl_recvmsg_msg_cb_t = { msg, arg in
    exchange(arg).onMessage?(nlmsg_hdr(msg))
    return Int32(NL_OK.rawValue)
}

private let exchangeDone: nl_recvmsg_msg_cb_t = { _, arg in
    exchange(arg).done = true
    return Int32(NL_STOP.rawValue)
}

private let exchangeError: nl_recvmsg_err_cb_t = { _, err, arg in
    let ex = exchange(arg)
    ex.done = true
    guard let err else { return Int32(NL_STOP.rawValue) }
    ex.errno = -err.pointee.error
    if let text = rs_extack_message(err) { ex.extack = String(cString: text) }
    return Int32(NL_STOP.rawValue)
}

/// The attributes of one message, indexed by type (`nlmsg_parse`'s `tb[]`), reusable across
/// the messages of a dump.
final class AttributeTable {
    let maxType: Int
    let slots: UnsafeMutablePointer<UnsafeMutablePointer<nlattr>?>

    init(maxType: Int) {
        self.maxType = maxType
        slots = .allocate(capacity: maxType + 1)
        slots.initialize(repeating: nil, count: maxType + 1)
    }
    deinit { slots.deallocate() }

    /// Fills the table from the attributes after a message's fixed header; false if malformed.
    func parse(_ hdr: UnsafeMutablePointer<nlmsghdr>, headerSize: Int) -> Bool {
        nlmsg_parse(hdr, Int32(headerSize), slots, Int32(maxType), nil) >= 0
    }

    subscript(type: Int) -> UnsafeMutablePointer<nlattr>? { type <= maxType ? slots[type] : nil }
}

func attributeBytes(_ a: UnsafeMutablePointer<nlattr>) -> [UInt8] {
    let n = Int(nla_len(a))
    guard n > 0, let p = nla_data(a) else { return [] }
    return Array(UnsafeRawBufferPointer(start: p, count: n))
}

func attributeString(_ a: UnsafeMutablePointer<nlattr>) -> String {
    var b = attributeBytes(a)
    if let z = b.firstIndex(of: 0) { b.removeSubrange(z...) }
    return String(decoding: b, as: UTF8.self)
}

/// A libnl `nl_addr` for `address/prefix`; caller releases with `nl_addr_put`.
func makeNLAddr(_ address: IPAddress, prefix: Int) -> OpaquePointer? {
    var b = address.bytes
    let a = b.withUnsafeMutableBytes { nl_addr_build(address.family, $0.baseAddress, $0.count) }
    if let a { nl_addr_set_prefixlen(a, Int32(prefix)) }
    return a
}

func ipAddress(of nlAddr: OpaquePointer?) -> IPAddress? {
    guard let nlAddr, let p = nl_addr_get_binary_addr(nlAddr) else { return nil }
    let n = Int(nl_addr_get_len(nlAddr))
    return IPAddress(bytes: Array(UnsafeRawBufferPointer(start: p, count: n)))
}
