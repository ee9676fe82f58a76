import Netlink

/// What the host looks like now: everything the planner needs, read in one pass.
/// Plain values, so tests build one by hand.
public struct HostState: Sendable {
    public var links: [Link]
    public var addresses: [Address]
    /// Current values of the sysctls the planner asked about; nil when the file does not exist
    /// (the device is missing).
    public var sysctls: [SysctlKey: Int]
    /// Interface of the default route (IPv4, else IPv6), if there is one.
    public var defaultRouteInterface: String?
    /// The `state_dir` whose rsagent claimed this network namespace (`NamespaceClaim`), if any.
    public var namespaceOwner: String?
    /// The FOU receive ports (`ip fou show`); empty while the fou module is not loaded.
    public var fouPorts: Set<FOUPort> = []
    /// The nftables `inet` tables (`nft list tables inet`), for the MSS clamp's own.
    public var nftTables: [NFTable] = []

    public init(
        links: [Link] = [], addresses: [Address] = [], sysctls: [SysctlKey: Int] = [:],
        defaultRouteInterface: String? = nil
    ) {
        self.links = links; self.addresses = addresses; self.sysctls = sysctls
        self.defaultRouteInterface = defaultRouteInterface
    }

    public func link(named name: String) -> Link? { links.first { $0.name == name } }
    public func link(_ index: InterfaceIndex) -> Link? { links.first { $0.index == index } }
    public func name(of index: InterfaceIndex) -> String { link(index)?.name ?? "#\(index.rawValue)" }
    public var ownedAddresses: [Address] { addresses.filter(\.isOwned) }

    public func effective(_ key: SysctlKey) -> Int {
        effectiveSysctl(all: sysctls[key.allKey], device: sysctls[key])
    }
}

/// What rsagent remembers in `state_dir` between runs: what it cannot read back from the kernel.
/// (Addresses need no entry: their `IFA_PROTO` mark lives in the kernel.)
public struct AgentState: Codable, Sendable, Equatable {
    /// A sysctl's value before rsagent first changed it, and the value rsagent wrote.
    public struct SavedSysctl: Codable, Sendable, Equatable {
        public var original: Int
        public var written: Int
    }
    public var version = 1
    /// Keyed by `net.ipv4.conf.DEV.NAME`.
    public var sysctls: [String: SavedSysctl] = [:]
    /// Devices rsagent created (or is about to: recorded before the create request, so that a
    /// `kill -9` between the two still leaves the device known as rsagent's).
    public var devices: [String] = []
    /// Devices that were down and that rsagent set up (`down` sets them down again).
    public var linksSetUp: [String] = []
    /// FOU ports rsagent added (recorded before the request; FOU ports carry no owner mark).
    public var fouPorts: [FOUPort] = []
    /// ip6tnl modes rsagent changed, keyed by device: the mode before (`original`) and the one
    /// rsagent set (`written`), as for sysctls.
    public var tunnelModes: [String: SavedSysctl] = [:]

    public init() {}
    public var isEmpty: Bool {
        sysctls.isEmpty && devices.isEmpty && linksSetUp.isEmpty && fouPorts.isEmpty && tunnelModes.isEmpty
    }

    enum CodingKeys: String, CodingKey { case version, sysctls, devices, linksSetUp, fouPorts, tunnelModes }

    /// State files written before a key existed lack it: it reads as empty.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 1
        sysctls = try c.decodeIfPresent([String: SavedSysctl].self, forKey: .sysctls) ?? [:]
        devices = try c.decodeIfPresent([String].self, forKey: .devices) ?? []
        linksSetUp = try c.decodeIfPresent([String].self, forKey: .linksSetUp) ?? []
        fouPorts = try c.decodeIfPresent([FOUPort].self, forKey: .fouPorts) ?? []
        tunnelModes = try c.decodeIfPresent([String: SavedSysctl].self, forKey: .tunnelModes) ?? [:]
    }
}
