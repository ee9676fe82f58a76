/// The per-interface IPv4 sysctls rsagent manages.
public enum SysctlName: String, Sendable, Codable, CaseIterable, Comparable {
    case arpIgnore = "arp_ignore"
    case arpAnnounce = "arp_announce"
    case rpFilter = "rp_filter"

    /// Values the kernel gives meaning to. The kernel accepts any integer (arp_ignore=99 reads
    /// back 99), so rsagent checks ranges itself before writing.
    public var validValues: Set<Int> {
        switch self {
        case .arpIgnore: [0, 1, 2, 3, 4, 5, 6, 7, 8]
        case .arpAnnounce: [0, 1, 2]
        case .rpFilter: [0, 1, 2]
        }
    }

    public static func < (l: Self, r: Self) -> Bool { l.rawValue < r.rawValue }
}

/// `net.ipv4.conf.<interface>.<name>`, where interface may be `all`.
public struct SysctlKey: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var interface: String
    public var name: SysctlName
    public init(_ interface: String, _ name: SysctlName) { self.interface = interface; self.name = name }

    public static let allInterfaces = "all"

    /// `net.ipv4.conf.eth0.arp_ignore` — what `sysctl` prints.
    public var description: String { "net.ipv4.conf.\(interface).\(name.rawValue)" }
    /// `/proc/sys/net/ipv4/conf/eth0/arp_ignore` — the interface name is used literally (no
    /// `.`→`/` translation as in the `sysctl` tool).
    public var procPath: String { "/proc/sys/net/ipv4/conf/\(interface)/\(name.rawValue)" }
    public var allKey: SysctlKey { SysctlKey(Self.allInterfaces, name) }

    public static func < (l: Self, r: Self) -> Bool { (l.interface, l.name) < (r.interface, r.name) }
}

/// The value the kernel acts on for `arp_ignore`, `arp_announce` and `rp_filter`: the larger of
/// `all` and the interface's own (`IN_DEV_MAXCONF` in the kernel). Unknown values count as 0.
public func effectiveSysctl(all: Int?, device: Int?) -> Int {
    max(all ?? 0, device ?? 0)
}
