import Netlink

/// LVS-Tun encapsulations, without I/O: what a realserver must have to take in what the
/// director sends (`ipvsadm --tun-type ipip|gue|gre`, over IPv4 or IPv6, with IPv4 or IPv6 VIPs).
///
/// The director's packet is the client's packet (inner: the VIP's family) inside a header
/// addressed to this realserver (outer: the RIP's family). The kernel hands it to a device by
/// outer family and encapsulation, and each device takes only some inner families:
///
/// | sent as          | outer IPv4                   | outer IPv6                            |
/// |------------------|------------------------------|---------------------------------------|
/// | ipip, IPv4 VIP   | tunl0 (ipip)                 | ip6tnl0 (ip6_tunnel), mode any        |
/// | ipip, IPv6 VIP   | sit0 (sit)                   | ip6tnl0                               |
/// | gue              | as ipip, plus a FOU port     | as ipip, plus a FOU port (IPv6)       |
/// | gre, either VIP  | gre0 (ip_gre)                | ip6gre0 (ip6_gre)                     |
///
/// (Measured under Debian's 6.1 kernel with a real IPVS director: KERNEL-FACTS.md, "LVS-Tun
/// encapsulations".)
public enum TunnelType: String, Sendable, Codable, CaseIterable {
    case ipip, gue, gre
}

public enum IPFamily: String, Sendable, Codable, CaseIterable, Comparable {
    case ipv4, ipv6
    public static func < (a: IPFamily, b: IPFamily) -> Bool { a == .ipv4 && b == .ipv6 }
    public init(of address: IPAddress) { self = address.isIPv4 ? .ipv4 : .ipv6 }
}

/// A device that decapsulates the director's packets.
public struct DecapDevice: Hashable, Sendable {
    /// The kernel's fallback device (`tunl0`, `sit0`, `ip6tnl0`, `gre0`, `ip6gre0`), which
    /// appears when its module loads.
    public var name: String
    /// The rtnetlink link kind (`ip link add … type KIND`), whose creation loads the module.
    public var kind: String
    public var module: String
    public var outer: IPFamily
    /// The VIP families that arrive on it.
    public var inner: Set<IPFamily>

    /// `ip6tnl0` is ip6ip6 by default and drops IPv4 inside IPv6 silently: with IPv4 VIPs it
    /// must take any inner protocol (`ip -6 tunnel change ip6tnl0 mode any`).
    public var needsAnyMode: Bool { kind == "ip6tnl" && inner.contains(.ipv4) }

    /// Bytes the encapsulation adds to every packet (outer header, GRE header; GUE's UDP and
    /// GUE headers are counted by `Decapsulation.overhead`).
    public var headerBytes: Int {
        switch kind {
        case "ipip", "sit": 20
        case "ip6tnl": 40
        case "gre": 24
        case "ip6gre": 44
        default: 0
        }
    }

    /// The fallback device each tunnel kind's module creates: the only name rsagent makes
    /// itself for these kinds (where a namespace got none), and so the only one it deletes.
    public static let fallbackNames = [
        "ipip": "tunl0", "sit": "sit0", "ip6tnl": "ip6tnl0", "gre": "gre0", "ip6gre": "ip6gre0",
    ]
    /// The module of each kind, for messages.
    public static let modules = [
        "ipip": "ipip", "sit": "sit", "ip6tnl": "ip6_tunnel", "gre": "ip_gre", "ip6gre": "ip6_gre",
    ]

    static func `for`(_ type: TunnelType, outer: IPFamily, inner: IPFamily) -> DecapDevice {
        switch (type, outer, inner) {
        case (.gre, .ipv4, _): DecapDevice(name: "gre0", kind: "gre", module: "ip_gre", outer: .ipv4, inner: [inner])
        case (.gre, .ipv6, _):
            DecapDevice(name: "ip6gre0", kind: "ip6gre", module: "ip6_gre", outer: .ipv6, inner: [inner])
        case (_, .ipv4, .ipv4): DecapDevice(name: "tunl0", kind: "ipip", module: "ipip", outer: .ipv4, inner: [.ipv4])
        case (_, .ipv4, .ipv6): DecapDevice(name: "sit0", kind: "sit", module: "sit", outer: .ipv4, inner: [.ipv6])
        case (_, .ipv6, _):
            DecapDevice(name: "ip6tnl0", kind: "ip6tnl", module: "ip6_tunnel", outer: .ipv6, inner: [inner])
        }
    }
}

/// A FOU receive port (`ip [-6] fou add port N gue`): the UDP port where GUE arrives.
public struct FOUPort: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public var port: Int
    public var family: IPFamily
    public init(port: Int, family: IPFamily) { self.port = port; self.family = family }
    public static func < (a: FOUPort, b: FOUPort) -> Bool { (a.port, a.family) < (b.port, b.family) }
    /// `6080 gue (IPv4)`
    public var description: String { "\(port) gue (\(family == .ipv4 ? "IPv4" : "IPv6"))" }

    public enum Change { case add, remove }
    /// The `ip` command that does the same.
    public func command(_ c: Change) -> String {
        "ip \(family == .ipv6 ? "-6 " : "")fou \(c == .add ? "add" : "del") port \(port)\(c == .add ? " gue" : "")"
    }
}

/// What a set of encapsulations needs on this realserver.
public struct Decapsulation: Sendable, Equatable {
    /// In a stable order: by outer family, then name.
    public var devices: [DecapDevice]
    public var fouPorts: [FOUPort]
    /// `rp_filter` per decapsulating device that receives IPv4 (IPv6 has no reverse-path
    /// filter): the kernel checks the inner packet against the device it arrives on, and on a
    /// device without an IPv4 address every nonzero value drops it, loose included. So 2 on the
    /// device that holds the VIPs, else 0 there and 0 on `all` (`allOff`).
    public var rpFilter: [String: Int]
    public var allOff: Bool

    /// `types` × `outer` families × the VIPs' families; `vipDevice` is where the VIPs live.
    /// GUE needs `port`.
    public init(types: [TunnelType], outer: [IPFamily], vipFamilies: Set<IPFamily>, vipDevice: String, port: Int?) {
        var byName: [String: DecapDevice] = [:]
        var ports: Set<FOUPort> = []
        for type in types {
            for o in outer {
                for inner in vipFamilies {
                    let d = DecapDevice.for(type, outer: o, inner: inner)
                    byName[d.name, default: d].inner.insert(inner)
                }
                if type == .gue, let port { ports.insert(FOUPort(port: port, family: o)) }
            }
        }
        devices = byName.values.sorted { ($0.outer, $0.name) < ($1.outer, $1.name) }
        fouPorts = ports.sorted()
        var rp: [String: Int] = [:]
        for d in devices where d.inner.contains(.ipv4) { rp[d.name] = d.name == vipDevice ? 2 : 0 }
        rpFilter = rp
        allOff = rp.values.contains(0)
    }

    /// The largest overhead of these encapsulations, for the MTU and MSS advice: the outer
    /// header, plus GRE's 4 bytes, or GUE's UDP (8) and GUE (4) headers.
    public static func overhead(_ type: TunnelType, outer: IPFamily) -> Int {
        let ip = outer == .ipv4 ? 20 : 40
        switch type {
        case .ipip: return ip
        case .gre: return ip + 4
        case .gue: return ip + 8 + 4
        }
    }
}
