import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// `rsagent status --json` (schema `rsagent.status/1`, see README).
public struct StatusReport: Codable, Sendable, CommandReport {
    public struct OwnedAddress: Codable, Sendable {
        public var address: String
        public var prefix: Int
        public var device: String
        public var label: String?
        public var tentative: Bool
    }
    public struct OwnedDevice: Codable, Sendable {
        public var name: String
        public var kind: String?
        public var exists: Bool
        public var up: Bool
    }
    /// A FOU port rsagent added (`ip fou add port N gue`), and whether it is still there.
    public struct OwnedFOUPort: Codable, Sendable {
        public var port: Int
        public var family: IPFamily
        public var present: Bool
    }
    /// An ip6tnl mode rsagent changed (`ip -6 tunnel change ip6tnl0 mode any`): the mode before,
    /// the one rsagent set, and the one there now (nil: the device is gone).
    public struct SavedTunnelMode: Codable, Sendable {
        public var device: String
        public var original: String
        public var written: String
        public var current: String?
    }
    public struct Value: Codable, Sendable {
        public var all: Int?
        public var interface: Int?
        public var effective: Int
    }
    public struct InterfaceSysctls: Codable, Sendable {
        public var interface: String
        public var arpIgnore: Value
        public var arpAnnounce: Value
        public var rpFilter: Value
        enum CodingKeys: String, CodingKey {
            case interface, arpIgnore = "arp_ignore", arpAnnounce = "arp_announce", rpFilter = "rp_filter"
        }
    }
    public struct SavedSysctl: Codable, Sendable {
        public var key: String
        public var original: Int
        public var written: Int
        public var current: Int?
    }
    public struct ProfileView: Codable, Sendable {
        public var path: String
        public var mode: String
        public var device: String
        public var interfaces: [String]
        public var converged: Bool
        /// What `apply` would do now.
        public var drift: [ActionReport]
        public var conflicts: [Conflict]
    }

    public var schema = "rsagent.status/1"
    public var version = RSAgentVersion.string
    public var stateDir: String
    /// ready | drain | maint (set through the daemon; `ready` when never set).
    public var adminState: AdminState
    public var addresses: [OwnedAddress]
    public var devices: [OwnedDevice]
    public var fouPorts: [OwnedFOUPort] = []
    /// The comment of rsagent's nftables table (`tunnel.mss`), or nil when there is none.
    public var mssClamp: String?
    public var tunnelModes: [SavedTunnelMode] = []
    public var sysctls: [InterfaceSysctls]
    public var savedSysctls: [SavedSysctl]
    public var profile: ProfileView?
    /// The running daemon's own account (`rsagent run`), or nil when none runs.
    public var daemon: DaemonStatus?

    enum CodingKeys: String, CodingKey {
        case schema, version, stateDir = "state_dir", adminState = "admin_state", addresses, devices
        case fouPorts = "fou_ports", mssClamp = "mss_clamp", tunnelModes = "tunnel_modes", sysctls
        case savedSysctls = "saved_sysctls", profile, daemon
    }

    /// 0, or 3 when the host has drifted from the profile.
    public var exitCode: Int32 { profile.map { $0.converged ? 0 : 3 } ?? 0 }

    /// Every key always present (`profile` and `daemon` are `null` when absent), as the README's
    /// schema says: scripts test `.daemon == null`, not whether the key exists.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(version, forKey: .version)
        try c.encode(stateDir, forKey: .stateDir)
        try c.encode(adminState, forKey: .adminState)
        try c.encode(addresses, forKey: .addresses)
        try c.encode(devices, forKey: .devices)
        try c.encode(fouPorts, forKey: .fouPorts)
        try c.encode(mssClamp, forKey: .mssClamp)
        try c.encode(tunnelModes, forKey: .tunnelModes)
        try c.encode(sysctls, forKey: .sysctls)
        try c.encode(savedSysctls, forKey: .savedSysctls)
        try c.encode(profile, forKey: .profile)
        try c.encode(daemon, forKey: .daemon)
    }
}

extension Operations {
    public static func status(
        profile: Profile?, path: String?, stateDir: String, host: any HostSystem,
        observed: HostState? = nil
    ) throws -> StatusReport {
        let store = StateStore(directory: stateDir)
        let state = try store.load()
        let h = try observed ?? host.observe()
        func value(_ iface: String, _ name: SysctlName) -> StatusReport.Value {
            let k = SysctlKey(iface, name)
            return .init(all: h.sysctls[k.allKey], interface: h.sysctls[k], effective: h.effective(k))
        }
        let shown = h.links.filter { !$0.isLoopback }.map(\.name)
        var report = StatusReport(
            stateDir: stateDir,
            adminState: DaemonSignals.adminState(stateDir),
            addresses: h.ownedAddresses.sorted { ($0.index, $0.address) < ($1.index, $1.address) }.map {
                .init(
                    address: $0.address.description, prefix: $0.prefixLength, device: h.name(of: $0.index),
                    label: $0.label, tentative: $0.isTentative)
            },
            devices: state.devices.map { n in
                let l = h.link(named: n)
                return .init(name: n, kind: l?.kind, exists: l != nil, up: l?.isUp ?? false)
            },
            sysctls: ([SysctlKey.allInterfaces] + shown).map {
                .init(
                    interface: $0, arpIgnore: value($0, .arpIgnore), arpAnnounce: value($0, .arpAnnounce),
                    rpFilter: value($0, .rpFilter))
            },
            savedSysctls: state.sysctls.sorted { $0.key < $1.key }.map { k, v in
                .init(
                    key: k, original: v.original, written: v.written,
                    current: SysctlKey(parsing: k).flatMap { h.sysctls[$0] })
            },
            profile: nil,
            daemon: DaemonStatus.load(stateDir: stateDir))
        report.mssClamp = MSSRuleset.owned(in: h.nftTables)?.comment
        report.fouPorts = state.fouPorts.sorted().map {
            .init(port: $0.port, family: $0.family, present: h.fouPorts.contains($0))
        }
        report.tunnelModes = state.tunnelModes.sorted { $0.key < $1.key }.map { dev, saved in
            .init(
                device: dev, original: DecapDevice.modeName(saved.original),
                written: DecapDevice.modeName(saved.written),
                current: h.link(named: dev)?.tunnel?.proto.map(DecapDevice.modeName))
        }
        if let profile, let path {
            let plan = Planner.plan(profile, host: h, state: state)
            report.profile = .init(
                path: path, mode: profile.mode.rawValue, device: profile.deviceName,
                interfaces: plan.interfaces, converged: plan.isEmpty,
                drift: plan.actions.map { ActionReport($0, .planned) },
                conflicts: plan.conflicts)
        }
        return report
    }
}

extension StatusReport {
    /// The human view: owned things first, then the sysctls, then drift.
    public func renderText() -> String {
        var out = ""
        if let p = profile {
            out +=
                Style.bold("rsagent status")
                + " — \(p.path): mode \(p.mode), VIPs on \(p.device), facing \(p.interfaces.isEmpty ? "?" : p.interfaces.joined(separator: ", "))\n"
        } else {
            out += Style.bold("rsagent status") + " — state in \(stateDir)\n"
        }
        out += "admin state: \(adminState.rawValue)\n"
        if let d = daemon {
            out += "daemon: pid \(d.pid), running since \(d.startedAt), \(d.repairs) repair(s)"
            out += d.paused.map { ", paused: \($0)" } ?? ""
            out += "\n"
            if let why = d.notConverged {
                out += Style.red("daemon: not converged") + " (directors are told down, weight 0): \(why)\n"
            }
            if let last = d.lastRepair, let at = d.lastRepairAt { out += "last repair: \(at): \(last)\n" }
        } else {
            out += "daemon: not running\n"
        }
        out += "\n"
        if addresses.isEmpty {
            out += "VIPs owned by rsagent: none\n"
        } else {
            out += "VIPs owned by rsagent (\(addresses.count))\n"
            var t = Table("ADDRESS", "DEVICE", "LABEL", "NOTE")
            for a in addresses {
                t.add("\(a.address)/\(a.prefix)", a.device, a.label ?? "-", a.tentative ? "tentative (DAD)" : "")
            }
            out += t.render()
        }
        if !devices.isEmpty {
            out += "\nDevices created by rsagent\n"
            var t = Table("DEVICE", "KIND", "STATE")
            for d in devices { t.add(d.name, d.kind ?? "-", d.exists ? (d.up ? "up" : "down") : "missing") }
            out += t.render()
        }
        if !fouPorts.isEmpty {
            out += "\nFOU ports added by rsagent (GUE)\n"
            var t = Table("PORT", "FAMILY", "STATE")
            for p in fouPorts { t.add("\(p.port)", p.family.rawValue, p.present ? "present" : "missing") }
            out += t.render()
        }
        if !tunnelModes.isEmpty {
            out += "\nTunnel modes set by rsagent\n"
            var t = Table("DEVICE", "BEFORE", "SET", "NOW")
            for m in tunnelModes { t.add(m.device, m.original, m.written, m.current ?? "missing") }
            out += t.render()
        }
        if let m = mssClamp { out += "\nMSS clamp (nftables table inet \(MSSRuleset.table)): \(m)\n" }
        out += "\nARP and reverse-path filter (effective = max(all, interface))\n"
        var t = Table("INTERFACE", "ARP_IGNORE", "ARP_ANNOUNCE", "RP_FILTER")
        func cell(_ v: Value, _ isAll: Bool) -> String {
            isAll ? "\(v.effective)" : "\(v.effective)  (own \(v.interface.map(String.init) ?? "?"))"
        }
        for s in sysctls {
            let isAll = s.interface == SysctlKey.allInterfaces
            t.add(s.interface, cell(s.arpIgnore, isAll), cell(s.arpAnnounce, isAll), cell(s.rpFilter, isAll))
        }
        out += t.render()
        if !savedSysctls.isEmpty {
            out += "\nSysctls changed by rsagent (restored by `rsagent down`)\n"
            var t = Table("KEY", "BEFORE", "RSAGENT", "NOW")
            for s in savedSysctls { t.add(s.key, "\(s.original)", "\(s.written)", s.current.map(String.init) ?? "?") }
            out += t.render()
        }
        if let p = profile {
            out += "\n"
            if p.converged {
                out += Style.green("converged") + ": the host matches the profile\n"
            } else {
                out += Style.yellow("drift") + ": `rsagent apply` would do \(p.drift.count) action(s)\n"
                for d in p.drift { out += "  \(d.summary)\n" }
                for c in p.conflicts { out += "  " + Style.red("conflict: ") + c.message + "\n" }
            }
        }
        return out
    }
}
