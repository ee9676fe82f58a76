import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// What the reconciler last learned about the host, shared with the load report: directors must
/// never be told "healthy" while the host does not match the profile, and `/metrics` exports
/// the same facts for alerting.
public struct HealthSnapshot: Sendable, Equatable {
    /// Why the host does not match the profile right now (a conflict, a failed apply, another
    /// rsagent fighting over the VIPs, or the first pass not done yet); nil when converged.
    public var notConverged: String? = HealthSnapshot.starting
    /// A deliberate `rsagent down` holds the VIPs off this host.
    public var held = false
    /// Conflicts found by the last pass.
    public var conflicts = 0
    /// Repairs since the daemon started, by what was repaired (`address`, `sysctl`, `link`,
    /// `device`).
    public var repairs: [String: UInt64] = [:]
    /// The last SIGHUP: whether the new profile was taken, and when (seconds since the epoch).
    public var lastReload: (success: Bool, at: Double)?
    /// Each VIP of the profile and whether it is on the VIP device.
    public var vips: [VIPPresence] = []
    /// Effective `arp_ignore`, `arp_announce`, `rp_filter` per facing interface.
    public var facing: [FacingSysctls] = []

    public static let starting = "starting: the profile has not been applied yet"

    public struct VIPPresence: Sendable, Equatable {
        public var vip: IPAddress
        public var device: String
        public var present: Bool
    }

    public struct FacingSysctls: Sendable, Equatable {
        public var interface: String
        public var arpIgnore: Int
        public var arpAnnounce: Int
        public var rpFilter: Int
    }

    /// Why directors must not send new connections here, or nil when they may.
    public var outOfService: String? {
        held ? "held down by `rsagent down`" : notConverged
    }

    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        a.notConverged == b.notConverged && a.held == b.held && a.conflicts == b.conflicts && a.repairs == b.repairs
            && a.lastReload?.success == b.lastReload?.success && a.lastReload?.at == b.lastReload?.at
            && a.vips == b.vips && a.facing == b.facing
    }

    /// VIP presence and effective sysctls as read from `host` for `profile`.
    public mutating func record(_ host: HostState, profile: Profile, interfaces: [String]) {
        let device = host.link(named: profile.deviceName)?.index
        let onDevice = Set(host.addresses.lazy.filter { $0.index == device }.map(\.address))
        vips = profile.vips.map {
            VIPPresence(vip: $0.address, device: profile.deviceName, present: onDevice.contains($0.address))
        }
        facing = interfaces.map { i in
            FacingSysctls(
                interface: i, arpIgnore: host.effective(SysctlKey(i, .arpIgnore)),
                arpAnnounce: host.effective(SysctlKey(i, .arpAnnounce)),
                rpFilter: host.effective(SysctlKey(i, .rpFilter)))
        }
    }
}

/// The reconciler writes, the load report reads; every read is a copy taken under the lock.
public final class DaemonHealth: @unchecked Sendable {
    private let lock = Lock()
    private var current = HealthSnapshot()

    public init() {}

    public var snapshot: HealthSnapshot { lock.withLock { current } }

    public func update(_ change: (inout HealthSnapshot) -> Void) {
        lock.withLock { change(&current) }
    }
}

extension Action {
    /// What a repair restored, for `rsagent_repairs_total{what}`.
    var repairCategory: String {
        switch self {
        case .addAddress, .adoptAddress, .removeAddress: "address"
        case .setSysctl, .restoreSysctl: "sysctl"
        case .setLinkUp, .setLinkDown: "link"
        case .createDevice, .adoptDevice, .deleteDevice, .loadTunnelModule, .createOwnTunnel, .deleteOwnTunnel: "device"
        case .setTunnelMode, .restoreTunnelMode: "tunnel_mode"
        case .addFOUPort, .removeFOUPort: "fou_port"
        case .setMSSClamp, .removeMSSClamp: "mss_clamp"
        }
    }
}
