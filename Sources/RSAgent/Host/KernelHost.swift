import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// The real host: rtnetlink through libnl for links and addresses, `/proc/sys` for sysctls.
/// Holds one netlink socket for its lifetime, so thousands of requests cost one socket.
public final class KernelHost: HostSystem {
    let socket: RouteSocket
    private var indexByName: [String: InterfaceIndex] = [:]
    /// Device indexes by name, as of the last `observe` (and the lookups since).
    var linkIndexes: [String: InterfaceIndex] { indexByName }

    public init() throws { socket = try RouteSocket() }

    public func observe() throws -> HostState {
        let links = try socket.links()
        indexByName = Dictionary(links.map { ($0.name, $0.index) }, uniquingKeysWith: { a, _ in a })
        let addresses = try socket.addresses()
        var sysctls: [SysctlKey: Int] = [:]
        for iface in [SysctlKey.allInterfaces] + links.map(\.name) {
            for name in SysctlName.allCases {
                let k = SysctlKey(iface, name)
                if let v = try? readSysctl(k) { sysctls[k] = v }
            }
        }
        var h = HostState(
            links: links, addresses: addresses, sysctls: sysctls,
            defaultRouteInterface: defaultRouteInterface(links))
        h.namespaceOwner = NamespaceClaims.owner()
        // Unreadable FOU ports read as none: adding them then says what the kernel refuses.
        h.fouPorts = (try? observeFOUPorts()) ?? []
        h.nftTables = (try? NFTables.inetTables()) ?? []
        return h
    }

    /// Links, addresses and the default route's interface, without the sysctls.
    /// Equivalent to: `ip link; ip addr; ip route get 198.51.100.1`.
    public func observeAddressesOnly() throws -> HostState {
        let links = try socket.links()
        return HostState(
            links: links, addresses: try socket.addresses(), defaultRouteInterface: defaultRouteInterface(links))
    }

    /// The interface of the default route (IPv4 first, then IPv6).
    /// Equivalent to: `ip route show default`.
    func defaultRouteInterface(_ links: [Link]) -> String? {
        for family in [AF_INET, AF_INET6] {
            if let oif = try? socket.defaultRouteInterface(family: family),
                let l = links.first(where: { $0.index == oif })
            {
                return l.name
            }
        }
        return nil
    }

    func index(_ name: String) throws -> InterfaceIndex {
        if let i = indexByName[name] { return i }
        for l in try socket.links() { indexByName[l.name] = l.index }
        guard let i = indexByName[name] else {
            throw NetlinkError(operation: "looking up device \(name)", errno: ENODEV)
        }
        return i
    }

    public func createDevice(name: String, kind: String) throws {
        try socket.createLink(name: name, kind: kind)
        indexByName[name] = nil
    }

    public func deleteDevice(name: String) throws {
        try socket.deleteLink(try index(name), name: name)
        indexByName[name] = nil
    }

    public func setLink(name: String, up: Bool) throws {
        try socket.setLink(try index(name), name: name, up: up)
    }

    public func setAlias(name: String, alias: String) throws {
        try socket.setLink(try index(name), name: name, alias: alias)
    }

    /// Makes sure the fallback tunnel device `name` (tunl0, sit0, ip6tnl0, gre0, ip6gre0)
    /// exists. Equivalent to: `ip link add tunl0 type ipip`, which makes the kernel load the
    /// module itself (`request_module("rtnl-link-ipip")`, CAP_NET_ADMIN is enough: nothing is
    /// spawned). Loading the module creates the fallback device in every namespace, so the
    /// request then ends in EEXIST; if it succeeds instead, this namespace got no fallback
    /// device (`net.core.fb_tunnels_only_for_init_net`) and rsagent made it: returns true, and
    /// the device is rsagent's to delete.
    public func ensureTunnelDevice(name: String, kind: String) throws -> Bool {
        var created = false
        do {
            try socket.createLink(name: name, kind: kind)
            created = true
        } catch let e as NetlinkError where e.errno == EEXIST {
            created = false
        }
        indexByName[name] = nil
        _ = try index(name)
        return created
    }

    public func createOwnTunnel(_ t: OwnTunnel) throws {
        try socket.createGRETunnel(
            name: t.name, ipv6: t.kind == "ip6gre", link: try index(t.link), linkName: t.link, checksums: t.checksums)
        indexByName[t.name] = nil
    }

    public func setTunnelMode(name: String, proto: Int) throws {
        try RouteSocket.setIP6TunnelMode(name: name, proto: proto)
    }

    /// The FOU socket, opened on first use: resolving the `fou` family loads its module, so a
    /// host that never asks for GUE never gets it.
    private var fou: FOUSocket?
    private func fouSocket() throws -> FOUSocket {
        if let fou { return fou }
        let f = try FOUSocket()
        fou = f
        return f
    }

    public func addFOUPort(_ p: FOUPort) throws {
        do { try fouSocket().add(FOUReceivePort(port: p.port, ipv6: p.family == .ipv6)) } catch let e
            as NetlinkError where e.errno == EEXIST
        {}
    }

    public func deleteFOUPort(_ p: FOUPort) throws {
        do { try fouSocket().delete(FOUReceivePort(port: p.port, ipv6: p.family == .ipv6)) } catch let e
            as NetlinkError where e.errno == ENOENT
        {}
    }

    /// `nft -f` with the ruleset's commands, through libnftables.
    public func replaceMSSClamp(_ ruleset: MSSRuleset) throws {
        try NFTables().run(ruleset.commands, operation: "nft: replacing table inet \(MSSRuleset.table) (MSS clamp)")
    }

    public func removeMSSClamp() throws {
        guard MSSRuleset.owned(in: (try? NFTables.inetTables()) ?? []) != nil else { return }
        try NFTables().run(MSSRuleset.deleteCommand, operation: "nft delete table inet \(MSSRuleset.table)")
    }

    /// The GUE receive ports (`ip fou show`; `ip -6 fou show`), read only where the fou module
    /// is loaded (`/sys/module/fou`): asking otherwise would load it.
    func observeFOUPorts() throws -> Set<FOUPort> {
        guard access("/sys/module/fou", F_OK) == 0 else { return [] }
        return Set(
            try fouSocket().ports().filter(\.gue).map { FOUPort(port: $0.port, family: $0.ipv6 ? .ipv6 : .ipv4) })
    }

    public func addAddress(_ ip: IPAddress, prefix: Int, device: String, replace: Bool) throws {
        let r = AddressRequest(
            index: try index(device), device: device, address: ip, prefixLength: prefix,
            label: Self.label(for: device))
        guard replace else { return try socket.addAddress(r) }
        try socket.replaceAddress(r)
        // The kernel keeps an address's label on replace (only the mark changes), so an IPv4
        // VIP taken over is added once more to carry `DEV:rs` like the others: a gap of one
        // netlink round trip, once, when an operator adopts it.
        guard ip.isIPv4, r.label != nil else { return }
        var bare = r
        bare.label = nil  // a delete that names a label matches only an address with that label
        try socket.deleteAddress(bare)
        do { try socket.addAddress(r) } catch {
            try? socket.addAddress(bare)
            throw error
        }
    }

    public func deleteAddress(_ ip: IPAddress, prefix: Int, device: String) throws {
        try socket.deleteAddress(
            AddressRequest(
                index: try index(device), device: device, address: ip,
                prefixLength: prefix))
    }

    /// `lo:rs`, so `ip addr` and `ifconfig` users see which addresses are rsagent's. IPv4 only;
    /// skipped when it would pass the kernel's 15-byte limit.
    static func label(for device: String) -> String? {
        let l = "\(device):rs"
        return l.utf8.count <= 15 ? l : nil
    }

    public func readSysctl(_ key: SysctlKey) throws -> Int? {
        try readSmallFile(key.procPath, operation: "reading \(key)").flatMap { Int($0.trimmed) }
    }

    public func writeSysctl(_ key: SysctlKey, _ value: Int) throws {
        guard key.name.validValues.contains(value) else {
            throw SystemError(
                operation: "setting \(key) to \(value)", errno: EINVAL,
                reason:
                    "\(value) is outside the values the kernel gives meaning to (\(key.name.validValues.sorted().map(String.init).joined(separator: ", ")))"
            )
        }
        try writeExistingFile(key.procPath, "\(value)\n", operation: "setting \(key) to \(value)")
    }
}
