internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// rsagent's owner mark in the kernel's address protocol attribute (`IFA_PROTO`, Linux ≥ 5.18).
///
/// 0x52 is 'R'. The kernel reserves 0–3 (`IFAPROT_UNSPEC`, `_KERNEL_LO`, `_KERNEL_RA`,
/// `_KERNEL_LL`); anything else is free for user space. An address carrying this value was added
/// by rsagent, and that survives `kill -9`, restarts and reboots of the agent.
public let rsagentAddressProtocol: UInt8 = 0x52

/// One address as the kernel reports it (`ip addr show`).
public struct Address: Hashable, Sendable, Codable {
    public var index: InterfaceIndex
    public var address: IPAddress
    public var prefixLength: Int
    /// IPv4 label (`lo:rs`); nil for IPv6 and unlabelled addresses.
    public var label: String?
    /// `IFA_F_*` flags (from `IFA_FLAGS` when present).
    public var flags: UInt32
    /// `IFA_PROTO`, 0 when absent (older kernels, or added without one).
    public var proto: UInt8

    public init(
        index: InterfaceIndex, address: IPAddress, prefixLength: Int, label: String? = nil,
        flags: UInt32 = 0, proto: UInt8 = 0
    ) {
        self.index = index; self.address = address; self.prefixLength = prefixLength
        self.label = label; self.flags = flags; self.proto = proto
    }

    /// True when rsagent's mark is on it.
    public var isOwned: Bool { proto == rsagentAddressProtocol }
    /// `IFA_F_TENTATIVE`: IPv6 duplicate address detection still running.
    public var isTentative: Bool { flags & UInt32(IFA_F_TENTATIVE) != 0 }
}

/// What to add or delete: a host address on a device.
public struct AddressRequest: Sendable, Hashable {
    public var index: InterfaceIndex
    public var device: String
    public var address: IPAddress
    public var prefixLength: Int
    public var label: String?
    public var proto: UInt8

    public init(
        index: InterfaceIndex, device: String, address: IPAddress, prefixLength: Int? = nil,
        label: String? = nil, proto: UInt8 = rsagentAddressProtocol
    ) {
        self.index = index; self.device = device; self.address = address
        self.prefixLength = prefixLength ?? address.hostPrefixLength
        self.label = label; self.proto = proto
    }

    var ipCommand: String { "\(address)/\(prefixLength) dev \(device)" }
}

extension RouteSocket {
    /// Every address of every device, with its `IFA_PROTO`. Equivalent to: `ip addr show`
    /// (iproute2 6.1 does not print the protocol; libnl 3.7 does not parse it, so the dump is
    /// read here attribute by attribute).
    public func addresses() throws -> [Address] {
        try retryingInterruptedDump { try dumpAddresses() }
    }

    private func dumpAddresses() throws -> [Address] {
        guard let msg = nlmsg_alloc_simple(Int32(RTM_GETADDR), NLM_F_DUMP) else {
            throw NetlinkError(operation: "ip addr show", errno: ENOMEM)
        }
        var req = ifaddrmsg()
        req.ifa_family = UInt8(AF_UNSPEC)
        _ = nlmsg_append(msg, &req, rs_ifaddrmsg_size(), Int32(NLMSG_ALIGNTO))
        var out: [Address] = []
        out.reserveCapacity(256)
        // One attribute table for the whole dump: a 10,000-address dump then allocates nothing
        // per message but the `Address` itself.
        let table = AttributeTable(maxType: Int(rs_ifa_max()))
        try transact(msg, operation: "ip addr show") { hdr in
            guard hdr.pointee.nlmsg_type == UInt16(RTM_NEWADDR),
                let a = Self.parseAddress(hdr, table: table)
            else { return }
            out.append(a)
        }
        return out
    }

    static func parseAddress(_ hdr: UnsafeMutablePointer<nlmsghdr>, table tb: AttributeTable) -> Address? {
        let ifa = nlmsg_data(hdr).load(as: ifaddrmsg.self)
        guard tb.parse(hdr, headerSize: rs_ifaddrmsg_size()) else { return nil }
        // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links.
        guard let raw = tb[Int(IFA_LOCAL)] ?? tb[Int(IFA_ADDRESS)],
            let ip = IPAddress(bytes: UnsafeRawBufferPointer(start: nla_data(raw), count: Int(nla_len(raw))))
        else { return nil }
        var flags = UInt32(ifa.ifa_flags)
        if let f = tb[Int(IFA_FLAGS)] { flags = nla_get_u32(f) }
        let proto = tb[Int(IFA_PROTO)].map { nla_get_u8($0) } ?? 0
        let label = tb[Int(IFA_LABEL)].map(attributeString)
        return Address(
            index: InterfaceIndex(rawValue: Int32(ifa.ifa_index)), address: ip,
            prefixLength: Int(ifa.ifa_prefixlen), label: label, flags: flags, proto: proto)
    }

    /// Adds a host address carrying the `IFA_PROTO` mark; IPv6 without DAD (a VIP must be usable at
    /// once, and is never answered by neighbour discovery on another device anyway).
    /// Equivalent to: `ip addr add ADDR/32 dev DEV [label DEV:rs]` (`nodad` for IPv6) plus
    /// `proto 0x52`, which iproute2 6.1 cannot set. Fails with `EEXIST` if present.
    public func addAddress(_ r: AddressRequest) throws {
        let msg = try Self.buildAddressMessage(r, add: true)
        try transact(msg, operation: "ip addr add \(r.ipCommand)")
    }

    /// Deletes an address. Equivalent to: `ip addr del ADDR/32 dev DEV`.
    public func deleteAddress(_ r: AddressRequest) throws {
        let msg = try Self.buildAddressMessage(r, add: false)
        try transact(msg, operation: "ip addr del \(r.ipCommand)")
    }

    /// Builds RTM_NEWADDR / RTM_DELADDR through libnl, then appends `IFA_PROTO` by hand
    /// (`addAddressMessageBytes` exposes the result to golden-byte tests).
    static func buildAddressMessage(_ r: AddressRequest, add: Bool, flags: Int32 = NLM_F_EXCL) throws -> OpaquePointer {
        let what = "\(add ? "ip addr add" : "ip addr del") \(r.ipCommand)"
        guard let addr = rtnl_addr_alloc(), let local = makeNLAddr(r.address, prefix: r.prefixLength) else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        defer { rtnl_addr_put(addr); nl_addr_put(local) }
        rtnl_addr_set_ifindex(addr, r.index.rawValue)
        _ = rtnl_addr_set_local(addr, local)
        rtnl_addr_set_prefixlen(addr, Int32(r.prefixLength))
        if !r.address.isIPv4 { rtnl_addr_set_flags(addr, UInt32(IFA_F_NODAD)) }
        if r.address.isIPv4, let label = r.label { _ = rtnl_addr_set_label(addr, label) }
        var msg: OpaquePointer?
        let rc =
            add
            ? rtnl_addr_build_add_request(addr, flags, &msg)
            : rtnl_addr_build_delete_request(addr, 0, &msg)
        guard rc >= 0, let msg else { throw NetlinkError(operation: what, errno: 0, libnlCode: -rc) }
        if add && r.proto != 0 {
            let prc = nla_put_u8(msg, Int32(IFA_PROTO), r.proto)
            if prc < 0 { nlmsg_free(msg); throw NetlinkError(operation: what, errno: 0, libnlCode: -prc) }
        }
        return msg
    }

    /// The bytes of the message `addAddress` would send (header sequence/pid left zero).
    public static func addAddressMessageBytes(_ r: AddressRequest) throws -> [UInt8] {
        let msg = try buildAddressMessage(r, add: true)
        defer { nlmsg_free(msg) }
        let hdr = nlmsg_hdr(msg)!
        return Array(UnsafeRawBufferPointer(start: hdr, count: Int(hdr.pointee.nlmsg_len)))
    }
}

extension RouteSocket {
    /// Re-sends an existing address with `NLM_F_REPLACE`, which updates its `IFA_PROTO` in
    /// place: the address never disappears. Equivalent to: `ip addr replace ADDR/32 dev DEV`.
    public func replaceAddress(_ r: AddressRequest) throws {
        let msg = try Self.buildAddressMessage(r, add: true, flags: NLM_F_REPLACE)
        try transact(msg, operation: "ip addr replace \(r.ipCommand)")
    }
}
