import Netlink

/// The alias (`IFLA_IFALIAS`) rsagent puts on devices it creates: a second, kernel-side mark
/// beside the state file, visible in `ip link show`.
public let ownerAlias = "rsagent: owned, do not edit"

/// One change to the host. The planner produces these; the executor carries them out.
public enum Action: Hashable, Sendable {
    /// `ip link add NAME type dummy`
    case createDevice(name: String, kind: String)
    /// Mark an existing device as rsagent's (`--adopt`).
    case adoptDevice(name: String)
    /// Load the tunnel module of `kind`, which creates its fallback `device` (tunl0, sit0,
    /// ip6tnl0, gre0, ip6gre0): `ip link add DEVICE type KIND` makes the kernel do it.
    case loadTunnelModule(device: String, kind: String)
    /// `ip link add NAME type gre|ip6gre dev LINK icsum`: a tunnel of rsagent's own.
    case createOwnTunnel(OwnTunnel)
    /// `ip link del NAME` for one of them (its settings kept, so that an undo makes it again).
    case deleteOwnTunnel(OwnTunnel)
    /// `ip -6 tunnel change DEVICE mode any`: ip6tnl's inner protocol (`DecapDevice.modeName`).
    case setTunnelMode(device: String, from: Int, to: Int)
    /// The same, putting back the mode rsagent found.
    case restoreTunnelMode(device: String, from: Int, to: Int)
    /// `ip [-6] fou add port N gue`: where the director's GUE packets arrive.
    case addFOUPort(FOUPort)
    /// `ip [-6] fou del port N`, for a port rsagent added.
    case removeFOUPort(FOUPort)
    /// `nft -f`: rsagent's table `inet rsagent` with the MSS clamp, replaced in one transaction.
    case setMSSClamp(MSSRuleset)
    /// `nft delete table inet rsagent`.
    case removeMSSClamp
    /// `ip link set NAME up`. `restoreOnDown`: the device was down before rsagent's first
    /// change, so `down` sets it down again; a device someone took down later (and the daemon
    /// brought back) stays up.
    case setLinkUp(name: String, restoreOnDown: Bool = true)
    /// `sysctl -w KEY=TO`
    case setSysctl(key: SysctlKey, from: Int?, to: Int)
    /// `ip addr add VIP/32 dev DEVICE` with rsagent's mark.
    case addAddress(IPAddress, device: String)
    /// Put rsagent's mark on an address that is already there (`--adopt`).
    case adoptAddress(IPAddress, prefix: Int, device: String)
    /// `ip addr del ADDR/PREFIX dev DEVICE` — only ever planned for marked addresses.
    case removeAddress(IPAddress, prefix: Int, device: String)
    /// `ip link del NAME` — only ever planned for devices rsagent created, of a kind it creates
    /// (`kind` as observed: an undo re-creates the same kind).
    case deleteDevice(name: String, kind: String)
    /// `sysctl -w KEY=ORIGINAL`, undoing rsagent's change.
    case restoreSysctl(key: SysctlKey, from: Int?, to: Int)
    /// `ip link set NAME down`, for a device that was down before rsagent set it up.
    case setLinkDown(name: String)

    /// Stable identifier for JSON.
    public var kind: String {
        switch self {
        case .createDevice: "create_device"
        case .adoptDevice: "adopt_device"
        case .loadTunnelModule: "load_tunnel_module"
        case .createOwnTunnel: "create_tunnel"
        case .deleteOwnTunnel: "delete_tunnel"
        case .setTunnelMode: "set_tunnel_mode"
        case .restoreTunnelMode: "restore_tunnel_mode"
        case .addFOUPort: "add_fou_port"
        case .removeFOUPort: "remove_fou_port"
        case .setMSSClamp: "set_mss_clamp"
        case .removeMSSClamp: "remove_mss_clamp"
        case .setLinkUp: "set_link_up"
        case .setSysctl: "set_sysctl"
        case .addAddress: "add_address"
        case .adoptAddress: "adopt_address"
        case .removeAddress: "remove_address"
        case .deleteDevice: "delete_device"
        case .restoreSysctl: "restore_sysctl"
        case .setLinkDown: "set_link_down"
        }
    }

    /// What is being done, as the start of a sentence: "adding 192.0.2.100/32 to lo".
    public var doing: String {
        switch self {
        case let .createDevice(n, k): "creating \(k) device \(n)"
        case let .adoptDevice(n): "adopting device \(n)"
        case let .loadTunnelModule(d, k): "creating \(d) (loading the \(k) tunnel module)"
        case let .createOwnTunnel(t): "creating \(t.kind) tunnel \(t.name) on \(t.link)"
        case let .deleteOwnTunnel(t): "deleting \(t.kind) tunnel \(t.name)"
        case let .setTunnelMode(d, _, to): "setting \(d) to mode \(DecapDevice.modeName(to))"
        case let .restoreTunnelMode(d, _, to): "restoring \(d) to mode \(DecapDevice.modeName(to))"
        case let .addFOUPort(p): "adding FOU port \(p)"
        case let .removeFOUPort(p): "removing FOU port \(p)"
        case .setMSSClamp: "setting the MSS clamp (nftables table inet \(MSSRuleset.table))"
        case .removeMSSClamp: "removing the MSS clamp (nftables table inet \(MSSRuleset.table))"
        case let .setLinkUp(n, _): "setting \(n) up"
        case let .setSysctl(k, _, to): "setting \(k) to \(to)"
        case let .addAddress(a, d): "adding \(a)/\(a.hostPrefixLength) to \(d)"
        case let .adoptAddress(a, p, d): "adopting \(a)/\(p) on \(d)"
        case let .removeAddress(a, p, d): "removing \(a)/\(p) from \(d)"
        case let .deleteDevice(n, _): "deleting device \(n)"
        case let .restoreSysctl(k, _, to): "restoring \(k) to \(to)"
        case let .setLinkDown(n): "setting \(n) down"
        }
    }

    /// One line for people, with its `ip`/`sysctl` equivalent.
    public var summary: String {
        switch self {
        case let .createDevice(n, k): "create \(k) device \(n) (ip link add \(n) type \(k))"
        case let .adoptDevice(n): "adopt device \(n) as rsagent's"
        case let .loadTunnelModule(d, k): "load \(k) tunnels to create \(d) (ip link add \(d) type \(k))"
        case let .createOwnTunnel(t): "create \(t.kind) tunnel \(t.name) (\(t.command))"
        case let .deleteOwnTunnel(t): "delete \(t.kind) tunnel \(t.name) (ip link del \(t.name))"
        case let .setTunnelMode(d, from, to):
            "\(d) mode \(DecapDevice.modeName(from)) -> \(DecapDevice.modeName(to)) (ip -6 tunnel change \(d) mode \(DecapDevice.modeName(to)))"
        case let .restoreTunnelMode(d, from, to):
            "\(d) mode \(DecapDevice.modeName(from)) -> \(DecapDevice.modeName(to)) (restored)"
        case let .addFOUPort(p): "add FOU port \(p) (\(p.command(.add)))"
        case let .removeFOUPort(p): "remove FOU port \(p) (\(p.command(.remove)))"
        case let .setMSSClamp(r):
            "clamp the MSS of SYN-ACKs from the VIPs: \(r.comment.dropFirst(MSSRuleset.mark.count + 2)) (nft table inet \(MSSRuleset.table))"
        case .removeMSSClamp: "remove the MSS clamp (nft delete table inet \(MSSRuleset.table))"
        case let .setLinkUp(n, _): "set \(n) up (ip link set \(n) up)"
        case let .setSysctl(k, from, to): "\(k) \(from.map(String.init) ?? "?") -> \(to)"
        case let .addAddress(a, d): "add \(a)/\(a.hostPrefixLength) to \(d)"
        case let .adoptAddress(a, p, d): "adopt \(a)/\(p) on \(d) (mark it as rsagent's)"
        case let .removeAddress(a, p, d): "remove \(a)/\(p) from \(d)"
        case let .deleteDevice(n, _): "delete device \(n) (ip link del \(n))"
        case let .restoreSysctl(k, from, to): "\(k) \(from.map(String.init) ?? "?") -> \(to) (restored)"
        case let .setLinkDown(n): "set \(n) down (it was down before rsagent)"
        }
    }

    /// The sign shown before the summary: + adds, - removes, ~ changes.
    public var sign: String {
        switch self {
        case .createDevice, .addAddress, .loadTunnelModule, .addFOUPort, .setMSSClamp, .createOwnTunnel: "+"
        case .removeAddress, .deleteDevice, .removeFOUPort, .removeMSSClamp, .deleteOwnTunnel: "-"
        default: "~"
        }
    }
}

/// A reason the profile cannot be applied to this host as it is. Found before any change.
public struct Conflict: Hashable, Sendable, Codable, CustomStringConvertible {
    public var id: String
    public var message: String
    public var description: String { message }
}

/// The planner's answer.
public struct Plan: Sendable {
    public var actions: [Action] = []
    public var conflicts: [Conflict] = []
    public var warnings: [String] = []
    /// The interfaces facing the director, after defaults were resolved.
    public var interfaces: [String] = []
    public var isEmpty: Bool { actions.isEmpty && conflicts.isEmpty }
}
