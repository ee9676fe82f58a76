import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// Named network namespaces made and removed without `ip`: what `ip netns add NAME` does is
/// `unshare(CLONE_NEWNET)` on one thread and a bind mount of its namespace on `/run/netns/NAME`.
/// Every call here switches only the calling thread and switches it back.
public enum NamedNamespace {
    public static func path(_ name: String) -> String { "/run/netns/\(name)" }

    public static func exists(_ name: String) -> Bool { access(path(name), F_OK) == 0 }

    /// Equivalent to: `ip netns add NAME`.
    public static func create(_ name: String) throws {
        let what = "creating network namespace \(name)"
        mkdir("/run/netns", 0o755)
        let p = path(name)
        let fd = open(p, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        guard fd >= 0 else {
            throw SystemError.current(what)
        }
        close(fd)
        let back = ThreadNamespace.openCurrent(ThreadNamespace.network)
        defer { close(back) }
        guard ThreadNamespace.unshareNew(ThreadNamespace.network) else {
            let error = SystemError.current(what, fix: "run as root")
            unlink(p)
            throw error
        }
        let bound = mount("/proc/thread-self/ns/net", p, "none", UInt(MS_BIND), nil)
        let error = SystemError.current(what)
        _ = ThreadNamespace.enter(back, ThreadNamespace.network)
        guard bound == 0 else {
            unlink(p)
            throw error
        }
    }

    /// Equivalent to: `ip netns del NAME` (the devices inside go with the namespace).
    public static func delete(_ name: String) {
        let p = path(name)
        umount2(p, Int32(MNT_DETACH))
        unlink(p)
    }

    /// Runs `body` with the calling thread inside namespace `name`: sockets it opens and
    /// `/proc/sys/net` files it writes, and processes it spawns, belong to that namespace.
    public static func within<T>(_ name: String, _ body: () throws -> T) throws -> T {
        let what = "entering network namespace \(name)"
        let target = open(path(name), O_RDONLY | O_CLOEXEC)
        guard target >= 0 else {
            throw SystemError.current(what)
        }
        defer { close(target) }
        let back = ThreadNamespace.openCurrent(ThreadNamespace.network)
        defer { close(back) }
        guard ThreadNamespace.enter(target, ThreadNamespace.network) else { throw SystemError.current(what) }
        defer { _ = ThreadNamespace.enter(back, ThreadNamespace.network) }
        return try body()
    }

    /// Writes a `/proc/sys/net/…` value inside namespace `name`. Equivalent to:
    /// `ip netns exec NAME sysctl -w KEY=VALUE`.
    public static func writeSysctl(_ name: String, _ key: String, _ value: Int) throws {
        try within(name) {
            try writeExistingFile(
                "/proc/sys/" + key.replacingAll(".", with: "/"), "\(value)\n",
                operation: "setting \(key)=\(value) in \(name)")
        }
    }
}

/// The lab's network: five hosts on one bridge.
///
///     client 10.77.0.10 ─┐
///     router 10.77.0.1  ─┤
///     director 10.77.0.2 ┼─ br0 (namespace rslab-lan)
///     rs1 10.77.0.11    ─┤   VIP 192.0.2.100 on lo of rs1 and rs2, set up by rsagent itself
///     rs2 10.77.0.12    ─┘
///
/// The client's gateway is the router, which routes the VIP to the director; the director
/// hands each connection to a realserver, which answers the client directly (LVS-DR).
public struct LabNetwork: Sendable {
    public struct Host: Sendable {
        public var role: String
        public var namespace: String
        public var address: IPAddress
    }

    public static let prefix = "rslab-"
    public static let lan = prefix + "lan"
    public static let vip = IPAddress("192.0.2.100")!
    public let hosts: [Host] = [
        Host(role: "client", namespace: prefix + "client", address: IPAddress("10.77.0.10")!),
        Host(role: "router", namespace: prefix + "router", address: IPAddress("10.77.0.1")!),
        Host(role: "director", namespace: prefix + "director", address: IPAddress("10.77.0.2")!),
        Host(role: "rs1", namespace: prefix + "rs1", address: IPAddress("10.77.0.11")!),
        Host(role: "rs2", namespace: prefix + "rs2", address: IPAddress("10.77.0.12")!),
    ]

    public init() {}

    public func host(_ role: String) -> Host { hosts.first { $0.role == role }! }
    public var realservers: [Host] { hosts.filter { $0.role.hasPrefix("rs") } }
    public var namespaces: [String] { [Self.lan] + hosts.map(\.namespace) }

    /// Namespaces of an earlier lab still present (`--keep`, or a crash).
    public var leftovers: [String] { namespaces.filter(NamedNamespace.exists) }

    /// Builds the namespaces, the bridge and the links, addresses and routes common to both
    /// director kinds. On failure everything made so far is removed.
    public func build() throws {
        do {
            for n in namespaces { try NamedNamespace.create(n) }
            let lanSocket = try NamedNamespace.within(Self.lan) { try RouteSocket() }
            try lanSocket.createLink(name: "br0", kind: "bridge")
            let lanFD = open(NamedNamespace.path(Self.lan), O_RDONLY | O_CLOEXEC)
            defer { close(lanFD) }
            for h in hosts {
                let fd = open(NamedNamespace.path(h.namespace), O_RDONLY | O_CLOEXEC)
                defer { close(fd) }
                try lanSocket.createVeth(name: "eth0", in: fd, peer: "to-\(h.role)", peerIn: lanFD)
            }
            let lanLinks = try lanSocket.links()
            let br = lanLinks.first { $0.name == "br0" }!
            for l in lanLinks where l.name.hasPrefix("to-") {
                try lanSocket.setMaster(l.index, name: l.name, master: br.index, masterName: "br0")
                try lanSocket.setLink(l.index, name: l.name, up: true)
            }
            try lanSocket.setLink(br.index, name: "br0", up: true)
            for h in hosts {
                let s = try NamedNamespace.within(h.namespace) { try RouteSocket() }
                let links = try s.links()
                // Only the lab's own links: with tunnel modules loaded, a new namespace also gets
                // their fallback devices (gre0, gretap0, …), some of which refuse to come up.
                for l in links where l.name == "lo" || l.name == "eth0" {
                    try s.setLink(l.index, name: l.name, up: true)
                }
                let eth0 = links.first { $0.name == "eth0" }!
                try s.addAddress(
                    AddressRequest(index: eth0.index, device: "eth0", address: h.address, prefixLength: 24, proto: 0))
                if h.role != "router" {
                    try s.addRoute(to: IPAddress("0.0.0.0")!, prefix: 0, via: [host("router").address])
                }
            }
            // Forwarding hosts: no ICMP redirects, which would teach the client a way around them.
            for role in ["router", "director"] {
                let ns = host(role).namespace
                try NamedNamespace.writeSysctl(ns, "net.ipv4.ip_forward", 1)
                try NamedNamespace.writeSysctl(ns, "net.ipv4.conf.all.send_redirects", 0)
                try NamedNamespace.writeSysctl(ns, "net.ipv4.conf.eth0.send_redirects", 0)
            }
            try NamedNamespace.writeSysctl(host("client").namespace, "net.ipv4.conf.all.accept_redirects", 0)
        } catch {
            teardown()
            throw error
        }
    }

    /// The router sends the VIP to the director; without IPVS the director spreads connections
    /// over the realservers with an ECMP route hashed on the layer-4 ports, delivering the VIP
    /// unchanged to a realserver's MAC — what LVS-DR does.
    public func routeThroughECMPDirector() throws {
        let router = try NamedNamespace.within(host("router").namespace) { try RouteSocket() }
        try router.addRoute(to: Self.vip, prefix: 32, via: [host("director").address])
        let d = host("director").namespace
        try NamedNamespace.writeSysctl(d, "net.ipv4.fib_multipath_hash_policy", 1)
        let director = try NamedNamespace.within(d) { try RouteSocket() }
        try director.addRoute(to: Self.vip, prefix: 32, via: realservers.map(\.address))
    }

    /// With IPVS the director holds the VIP on its LAN interface (and answers ARP for it); the
    /// router reaches it on the link. The virtual services are `ipvsadm`'s to make.
    public func routeThroughIPVSDirector() throws {
        let director = try NamedNamespace.within(host("director").namespace) { try RouteSocket() }
        let eth0 = try director.links().first { $0.name == "eth0" }!
        try director.addAddress(
            AddressRequest(index: eth0.index, device: "eth0", address: Self.vip, prefixLength: 32, proto: 0))
        let router = try NamedNamespace.within(host("router").namespace) { try RouteSocket() }
        try router.addRoute(to: Self.vip, prefix: 32, via: [host("director").address])
    }

    /// Which host each `eth0` MAC address belongs to (lowercase MAC → role), for naming the
    /// hosts that answer ARP.
    public func roleByMAC() throws -> [String: String] {
        var names: [String: String] = [:]
        for h in hosts {
            let s = try NamedNamespace.within(h.namespace) { try RouteSocket() }
            if let mac = try s.links().first(where: { $0.name == "eth0" })?.mac { names[mac] = h.role }
        }
        return names
    }

    /// Removes every lab namespace (and with them every device and address).
    public func teardown() {
        for n in namespaces where NamedNamespace.exists(n) { NamedNamespace.delete(n) }
    }
}
