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
/// | gre, checksummed | rsgre0 (rsagent's own)       | rsip6gre0 (rsagent's own)             |
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
    /// Set for a tunnel of rsagent's own (the fallback devices take no settings).
    public var own: OwnTunnel?

    /// `ip6tnl0` is ip6ip6 by default and drops IPv4 inside IPv6 silently: with IPv4 VIPs it
    /// must take any inner protocol (`ip -6 tunnel change ip6tnl0 mode any`).
    public var needsAnyMode: Bool { kind == "ip6tnl" && inner.contains(.ipv4) }
    /// Whether an ip6tnl device in mode `proto` takes every inner family this one must.
    public func takes(proto: Int) -> Bool {
        switch proto {
        case DecapDevice.anyMode: true
        case 4: !inner.contains(.ipv6)
        case DecapDevice.ip6ip6Mode: !inner.contains(.ipv4)
        default: false
        }
    }
    /// `ip6tnl`'s inner protocol (`IFLA_IPTUN_PROTO`): 0 is mode any, 4 ip4ip6, 41 ip6ip6 (the
    /// fallback device's default).
    public static let anyMode = 0
    public static let ip6ip6Mode = 41
    public static func modeName(_ proto: Int) -> String {
        switch proto {
        case 0: "any"
        case 4: "ip4ip6"
        case 41: "ip6ip6"
        default: "protocol \(proto)"
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

/// A tunnel device rsagent makes and owns, where the kernel's fallback device will not do:
/// GRE with checksums (`ipvsadm --tun-csum`), which `gre0`/`ip6gre0` drop as checksum errors.
/// Equivalent to: `ip link add rsgre0 type gre dev eth0 icsum` (`type ip6gre` for IPv6). It has
/// no addresses and takes what the director sends to any address of its facing interface: the
/// kernel prefers a wildcard tunnel bound to the interface a packet arrived on over the
/// fallback device. Recorded in state.json before it is made, deleted by `down`.
public struct OwnTunnel: Hashable, Sendable, Codable {
    public var name: String
    /// `gre` or `ip6gre`.
    public var kind: String
    /// The facing interface it takes packets from (`IFLA_GRE_LINK`).
    public var link: String
    /// Require the GRE checksum on what arrives (`icsum`).
    public var checksums: Bool

    public init(name: String, kind: String, link: String, checksums: Bool) {
        self.name = name; self.kind = kind; self.link = link; self.checksums = checksums
    }

    /// `rsgre0` for the first facing interface, `rsip6gre1` for IPv6 on the second.
    static func name(outer: IPFamily, facing index: Int) -> String {
        (outer == .ipv4 ? "rsgre" : "rsip6gre") + String(index)
    }
    /// A name rsagent gives its own tunnels (a device of that name in state.json is rsagent's).
    public static func isOwnName(_ name: String, kind: String) -> Bool {
        let prefix = kind == "gre" ? "rsgre" : kind == "ip6gre" ? "rsip6gre" : nil
        guard let prefix, name.hasPrefix(prefix) else { return false }
        return !name.dropFirst(prefix.count).isEmpty && name.dropFirst(prefix.count).allSatisfy(\.isNumber)
    }
    /// The `ip` command that makes it.
    public var command: String { "ip link add \(name) type \(kind) dev \(link)\(checksums ? " icsum" : "")" }
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
    /// GUE needs `port`. GRE with `csum` takes a tunnel of rsagent's own per facing interface
    /// (`facing`, in the profile's order) instead of the fallback device.
    public init(
        types: [TunnelType], outer: [IPFamily], vipFamilies: Set<IPFamily>, vipDevice: String, port: Int?,
        csum: Bool = false, facing: [String] = []
    ) {
        var byName: [String: DecapDevice] = [:]
        var ports: Set<FOUPort> = []
        for type in types {
            for o in outer {
                for inner in vipFamilies {
                    var found = [DecapDevice.for(type, outer: o, inner: inner)]
                    if type == .gre && csum {
                        found = facing.enumerated().map { i, link in
                            var d = found[0]
                            d.name = OwnTunnel.name(outer: o, facing: i)
                            d.own = OwnTunnel(name: d.name, kind: d.kind, link: link, checksums: true)
                            return d
                        }
                    }
                    for d in found { byName[d.name, default: d].inner.insert(inner) }
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

    /// The overhead of an encapsulation, for the MTU and MSS advice: the outer header, plus
    /// GRE's 4 bytes (8 with its checksum), or GUE's UDP (8) and GUE (4) headers.
    public static func overhead(_ type: TunnelType, outer: IPFamily, csum: Bool = false) -> Int {
        let ip = outer == .ipv4 ? 20 : 40
        switch type {
        case .ipip: return ip
        case .gre: return ip + (csum ? 8 : 4)
        case .gue: return ip + 8 + 4
        }
    }
}
