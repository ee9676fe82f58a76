import Netlink

/// How the director reaches this realserver.
public enum Mode: String, Sendable, Codable, CaseIterable {
    /// LVS-DR: the frame arrives with the VIP as destination, only the MAC rewritten.
    case dr
    /// LVS-Tun: the packet arrives encapsulated (ipip, GUE or GRE; `tunnel:`).
    case tun
}

/// The kind of non-ARPing device that holds the VIPs.
public enum DeviceKind: String, Sendable, Codable, CaseIterable {
    case lo, dummy, tunl0
}

/// Where the ARP sysctls are set.
public enum ARPScope: String, Sendable, Codable, CaseIterable {
    /// On each facing interface only (`net.ipv4.conf.eth0.*`).
    case interfaces
    /// On `net.ipv4.conf.all.*`, which raises the floor of every interface.
    case all
}

/// What to do with reverse-path filtering on the interfaces that receive director traffic.
public enum RPFilterPolicy: String, Sendable, Codable, CaseIterable {
    case leave, loose, off
    /// The sysctl value (`rp_filter` 2 = loose, 0 = off); nil for `leave`.
    public var value: Int? {
        switch self {
        case .leave: nil;
        case .loose: 2;
        case .off: 0
        }
    }
}

/// What the daemon does with its VIPs when it stops.
/// What the daemon does with the VIPs on SIGTERM: keep them, remove them, or drain first
/// (weight 0, wait for the VIP services' connections to end, up to `drain_timeout`) and then
/// remove them.
public enum OnStop: String, Sendable, Codable, CaseIterable { case keep, remove, drain }

/// `tunnel:` — what the director sends in `mode: tun` (its `ipvsadm --tun-type`, `--tun-port`,
/// and the families of its tunnel packets).
public struct TunnelSettings: Hashable, Sendable, Codable {
    /// Each encapsulation accepted at once (a director being moved from ipip to GUE sends both).
    public var types: [TunnelType] = [.ipip]
    /// GUE's UDP port (`--tun-port`).
    public var port: Int?
    /// The outer header's families: the director's address family towards this realserver.
    public var outer: [IPFamily] = [.ipv4]
    /// `mss: auto | N | off`: clamp the MSS of SYN-ACKs from the VIPs (`MSSRuleset`).
    public var mss: MSSClamp = .off
    /// `csum: true`: the director sends GRE with checksums (`--tun-csum`).
    public var csum = false

    public init(
        types: [TunnelType] = [.ipip], port: Int? = nil, outer: [IPFamily] = [.ipv4], mss: MSSClamp = .off,
        csum: Bool = false
    ) {
        self.types = types; self.port = port; self.outer = outer; self.mss = mss; self.csum = csum
    }
}

/// `tcp/80`: a service the VIP carries (checked by `rsagent check`, counted by the load report).
public struct ServicePort: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Proto: String, Sendable, Codable { case tcp, udp }
    public var proto: Proto
    public var port: Int
    public var description: String { "\(proto.rawValue)/\(port)" }
}

/// One VIP and the services it carries.
public struct VIP: Hashable, Sendable, Codable {
    public var address: IPAddress
    public var services: [ServicePort]
    public init(address: IPAddress, services: [ServicePort] = []) {
        self.address = address; self.services = services
    }
}

/// `host:port` for a listener; IPv6 hosts in brackets (`[::]:3334`).
public struct Endpoint: Hashable, Sendable, Codable, CustomStringConvertible {
    public var host: IPAddress
    public var port: Int
    public var description: String { host.isIPv4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

    public init(host: IPAddress, port: Int) { self.host = host; self.port = port }

    /// Parses `0.0.0.0:3334` or `[::]:3334`; nil otherwise.
    public init?(_ text: String) {
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"),
                text[text.index(after: close)...].hasPrefix(":")
            else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard let h = IPAddress(String(hostPart)), let p = Int(portPart), (1...65535).contains(p) else { return nil }
        self.init(host: h, port: p)
    }
}

/// `192.0.2.0/24`: an allowed reader network.
public struct CIDR: Hashable, Sendable, Codable, CustomStringConvertible {
    public var network: IPAddress
    public var prefix: Int
    public var description: String { "\(network)/\(prefix)" }
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard let a = IPAddress(String(parts[0])) else { return nil }
        if parts.count == 1 { self.network = a; self.prefix = a.hostPrefixLength; return }
        guard parts.count == 2, let p = Int(parts[1]), (0...a.hostPrefixLength).contains(p) else { return nil }
        self.network = a; self.prefix = p
    }
    public func contains(_ a: IPAddress) -> Bool { a.isInside(network, prefix: prefix) }
}

/// `arp:` — the ARP-problem sysctls.
public struct ARPSettings: Hashable, Sendable, Codable {
    /// `arp_ignore`: 1 = answer only for addresses on the receiving interface.
    public var ignore: Int = 1
    /// `arp_announce`: 2 = always use the best local address of the outgoing interface.
    public var announce: Int = 2
    public var scope: ARPScope = .interfaces
}

/// `load:` — the load report (served by the daemon).
public struct LoadSettings: Hashable, Sendable, Codable {
    public var http: Endpoint?
    public var agentCheck: Endpoint?
    /// Empty: anyone may read.
    public var allow: [CIDR] = []
    public var weightMax: Int = 100
    public var weightMin: Int = 1
    /// Seconds between samples.
    public var interval: Double = 1
    /// Time constant of the weight's moving average, in seconds (0: no smoothing).
    public var smoothing: Double = 2
    /// Points (of 100) the smoothed weight must move before directors are told.
    public var hysteresis: Int = 10
    public var thresholds = LoadThresholds()
    /// Seconds over which the weight ramps up after entering `ready` (0: off).
    public var slowStart: Double = 0

    public init() {}
}

/// `load.thresholds:` — the value of each metric at which the realserver counts as full
/// (weight 0 on that metric).
public struct LoadThresholds: Hashable, Sendable, Codable {
    /// CPU utilisation, percent of all CPUs.
    public var cpu: Double = 100
    /// 1-minute load average per CPU.
    public var load: Double = 2
    /// Memory in use (total − available), percent.
    public var memory: Double = 100
    /// Established connections on the busiest declared TCP service; nil: not a limit.
    public var connections: Int?

    public init(cpu: Double = 100, load: Double = 2, memory: Double = 100, connections: Int? = nil) {
        self.cpu = cpu; self.load = load; self.memory = memory; self.connections = connections
    }
}

/// `test_service:` — the "which machine answered" service.
public struct TestServiceSettings: Hashable, Sendable, Codable {
    public var port: Int = 31337
    public var httpPort: Int?
}

/// A validated profile. Construct it with `ProfileDecoder`; every field is already checked.
public struct Profile: Hashable, Sendable, Codable {
    public var mode: Mode
    public var device: DeviceKind
    /// The VIP device's name: `lo`, `tunl0`, or the dummy device rsagent creates (`lvs0`).
    public var deviceName: String
    /// Interfaces facing the director; nil means "that of the default route", resolved on the host.
    public var interfaces: [String]?
    public var vips: [VIP]
    public var arp: ARPSettings
    public var rpFilter: RPFilterPolicy
    public var load: LoadSettings?
    public var testService: TestServiceSettings?
    public var stateDir: String
    public var onStop: OnStop
    /// The admin state a realserver starts in until an operator sets one (`ready` or `drain`:
    /// staging machines join drained and take traffic after `rsagent ready`).
    public var initialState: AdminState = .ready
    /// `on_stop: drain`: the longest wait for connections to end, seconds.
    public var drainTimeout: Double = 300
    /// `mode: tun`: the encapsulations to take in (ipip over IPv4 unless the profile says).
    public var tunnel: TunnelSettings?

    /// `mode: tun`: the devices, FOU ports and rp_filter values the tunnel settings need for
    /// these VIPs, with `facing` the interfaces facing the director; nil for `mode: dr`.
    public func decapsulation(facing: [String]) -> Decapsulation? {
        guard mode == .tun else { return nil }
        let t = tunnel ?? TunnelSettings()
        return Decapsulation(
            types: t.types, outer: t.outer, vipFamilies: Set(vips.map { IPFamily(of: $0.address) }),
            vipDevice: deviceName, port: t.port, csum: t.csum, facing: facing)
    }

    public static let defaultStateDir = "/var/lib/rsagent"
    public static let defaultDummyName = "lvs0"
}
