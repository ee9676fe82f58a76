import Netlink

/// Pure: desired (profile) × observed (host, state file) → ordered actions, or conflicts.
///
/// Order matters on a live realserver: the VIP device first, then the ARP and rp_filter
/// sysctls, and only then the VIPs — so there is never a moment where the host holds a VIP and
/// would still answer ARP for it. Stale VIPs go last, after their replacements are in place.
public enum Planner {
    public struct Options: Sendable {
        /// Take over VIPs and devices that exist without rsagent's mark.
        public var adopt = false
        public init(adopt: Bool = false) { self.adopt = adopt }
    }

    public static func plan(
        _ profile: Profile, host: HostState, state: AgentState,
        options: Options = .init()
    ) -> Plan {
        var plan = Plan()
        plan.interfaces = facingInterfaces(profile, host: host, plan: &plan)
        planDevice(profile, host: host, state: state, options: options, plan: &plan)
        planDecapsulation(profile, host: host, state: state, plan: &plan)
        plan.actions += sysctlActions(profile, interfaces: plan.interfaces, host: host)
        planMSSClamp(profile, host: host, interfaces: plan.interfaces, plan: &plan)
        planAddresses(profile, host: host, options: options, plan: &plan)
        planStaleDevices(profile, host: host, state: state, plan: &plan)
        planStaleSysctls(profile, interfaces: plan.interfaces, host: host, state: state, plan: &plan)
        planStaleFOUPorts(profile, host: host, state: state, plan: &plan)
        planStaleTunnelModes(profile, host: host, state: state, plan: &plan)
        return plan
    }

    /// "Before rsagent" is only what rsagent saw before its first change here: nothing of it in
    /// state_dir or in the kernel, and no claim on the namespace. A device found down later was
    /// taken down by someone else; bringing it back is a repair `down` keeps.
    static func isFirstChange(_ profile: Profile, host: HostState, state: AgentState) -> Bool {
        state.isEmpty && host.ownedAddresses.isEmpty && host.namespaceOwner != profile.stateDir
    }

    /// The interfaces the director's packets arrive on: the profile's, else the default route's.
    static func facingInterfaces(_ profile: Profile, host: HostState, plan: inout Plan) -> [String] {
        if let listed = profile.interfaces {
            for name in listed where host.link(named: name) == nil {
                let have = host.links.filter { !$0.isLoopback }.map(\.name).joined(separator: ", ")
                plan.conflicts.append(
                    Conflict(
                        id: "interface.missing",
                        message:
                            "interface \(name) in `interfaces:` does not exist on this host (it has: \(have.isEmpty ? "none" : have)); fix the name in the profile"
                    ))
            }
            return listed
        }
        guard let def = host.defaultRouteInterface, def != "lo" else {
            plan.conflicts.append(
                Conflict(
                    id: "interface.unknown",
                    message:
                        "cannot tell which interface faces the director: this host has no default route; list it in the profile as `interfaces: [eth0]`"
                ))
            return []
        }
        return [def]
    }

    static func planDevice(
        _ profile: Profile, host: HostState, state: AgentState, options: Options,
        plan: inout Plan
    ) {
        let name = profile.deviceName
        let first = isFirstChange(profile, host: host, state: state)
        switch profile.device {
        case .lo, .tunl0:
            if let l = host.link(named: name) {
                if !l.isUp { plan.actions.append(.setLinkUp(name: name, restoreOnDown: first)) }
            } else if profile.device == .tunl0 {
                plan.actions += [
                    .loadTunnelModule(device: name, kind: "ipip"), .setLinkUp(name: name, restoreOnDown: first),
                ]
            } else {
                plan.conflicts.append(
                    Conflict(
                        id: "device.missing",
                        message: "this host has no loopback device `lo`; is this a network namespace without one?"))
            }
        case .dummy:
            guard let l = host.link(named: name) else {
                plan.actions += [.createDevice(name: name, kind: "dummy"), .setLinkUp(name: name)]
                return
            }
            if l.kind != "dummy" {
                plan.conflicts.append(
                    Conflict(
                        id: "device.foreign",
                        message:
                            "device \(name) exists and is \(l.kind.map { "a \($0) device" } ?? "a device of another kind"), not a dummy; pick another `device_name`"
                    ))
                return
            }
            if !state.devices.contains(name) && l.alias != ownerAlias {
                if options.adopt {
                    plan.actions.append(.adoptDevice(name: name))
                } else {
                    plan.conflicts.append(
                        Conflict(
                            id: "device.foreign",
                            message:
                                "dummy device \(name) exists but was not created by rsagent; run `rsagent apply --adopt` to take it over, or pick another `device_name`"
                        ))
                    return
                }
            }
            if !l.isUp { plan.actions.append(.setLinkUp(name: name, restoreOnDown: first)) }
        }
    }

    /// `mode: tun`: every device that decapsulates what the director sends, up (created by
    /// loading its module when missing), and the FOU ports GUE arrives on. The VIP device
    /// itself is `planDevice`'s.
    static func planDecapsulation(_ profile: Profile, host: HostState, state: AgentState, plan: inout Plan) {
        guard let d = profile.decapsulation(facing: plan.interfaces) else { return }
        let first = isFirstChange(profile, host: host, state: state)
        for dev in d.devices where dev.name != profile.deviceName {
            if let own = dev.own {
                planOwnTunnel(own, host: host, state: state, plan: &plan)
                continue
            }
            guard let l = host.link(named: dev.name) else {
                plan.actions += [
                    .loadTunnelModule(device: dev.name, kind: dev.kind),
                    .setLinkUp(name: dev.name, restoreOnDown: first),
                ]
                // The module's fallback device starts as ip6ip6.
                if dev.needsAnyMode {
                    plan.actions.append(
                        .setTunnelMode(device: dev.name, from: DecapDevice.ip6ip6Mode, to: DecapDevice.anyMode))
                }
                continue
            }
            if let kind = l.kind, kind != dev.kind {
                plan.conflicts.append(
                    Conflict(
                        id: "tunnel.foreign",
                        message:
                            "device \(dev.name) exists but is a \(kind) device, not the kernel's \(dev.kind) fallback device: the director's \(dev.outer == .ipv4 ? "IPv4" : "IPv6") tunnel packets cannot be decapsulated; rename or delete that device"
                    ))
                continue
            }
            if !l.isUp { plan.actions.append(.setLinkUp(name: dev.name, restoreOnDown: first)) }
            if dev.needsAnyMode, let proto = l.tunnel?.proto, !dev.takes(proto: proto) {
                plan.actions.append(.setTunnelMode(device: dev.name, from: proto, to: DecapDevice.anyMode))
            }
        }
        for p in d.fouPorts where !host.fouPorts.contains(p) { plan.actions.append(.addFOUPort(p)) }
    }

    /// A tunnel of rsagent's own: made when missing, made again when its settings drifted (a
    /// GRE tunnel's link and flags cannot be changed in place), set up when down. A device of
    /// that name that rsagent did not make is a conflict.
    static func planOwnTunnel(_ own: OwnTunnel, host: HostState, state: AgentState, plan: inout Plan) {
        guard let linkIndex = host.link(named: own.link)?.index else { return }  // interface.missing
        guard let l = host.link(named: own.name) else {
            plan.actions += [.createOwnTunnel(own), .setLinkUp(name: own.name, restoreOnDown: false)]
            return
        }
        guard l.kind == own.kind, state.devices.contains(own.name) || l.alias == ownerAlias else {
            plan.conflicts.append(
                Conflict(
                    id: "tunnel.foreign",
                    message:
                        "device \(own.name) exists but was not created by rsagent: rsagent needs that name for its \(own.kind) tunnel taking checksummed GRE on \(own.link); rename or delete that device"
                ))
            return
        }
        if l.tunnel?.link != linkIndex.rawValue || l.tunnel?.inputChecksum != own.checksums {
            plan.actions += [
                .deleteOwnTunnel(ownTunnel(l, host: host)), .createOwnTunnel(own),
                .setLinkUp(name: own.name, restoreOnDown: false),
            ]
        } else if !l.isUp {
            plan.actions.append(.setLinkUp(name: own.name, restoreOnDown: false))
        }
    }

    /// The settings an existing tunnel of rsagent's own has (what an undo of its deletion makes).
    static func ownTunnel(_ l: Link, host: HostState) -> OwnTunnel {
        OwnTunnel(
            name: l.name, kind: l.kind ?? "gre", link: host.name(of: InterfaceIndex(rawValue: l.tunnel?.link ?? 0)),
            checksums: l.tunnel?.inputChecksum ?? false)
    }

    /// `tunnel.mss`: rsagent's nftables table, made or replaced when its comment (values and a
    /// digest of the rules) differs from the profile's, removed when the profile asks for none.
    /// A table of that name that is not rsagent's is a conflict, never touched.
    static func planMSSClamp(_ profile: Profile, host: HostState, interfaces: [String], plan: inout Plan) {
        let mtu = interfaces.compactMap { host.link(named: $0)?.mtu }.min()
        let wanted = MSSRuleset(profile, facingMTU: mtu)
        let present = host.nftTables.first { $0.name == MSSRuleset.table }
        if let present, MSSRuleset.owned(in: [present]) == nil {
            if wanted != nil {
                plan.conflicts.append(
                    Conflict(
                        id: "mss.foreign",
                        message:
                            "nftables table inet \(MSSRuleset.table) exists but was not made by rsagent: rsagent will not replace it to clamp the MSS; rename that table, or set tunnel.mss: off"
                    ))
            }
            return
        }
        if let wanted {
            if present?.comment != wanted.comment { plan.actions.append(.setMSSClamp(wanted)) }
        } else if present != nil {
            plan.actions.append(.removeMSSClamp)
        }
    }

    /// FOU ports rsagent added for an earlier profile (GUE dropped, another port): removed.
    static func planStaleFOUPorts(_ profile: Profile, host: HostState, state: AgentState, plan: inout Plan) {
        guard plan.conflicts.isEmpty else { return }
        let wanted = Set(profile.decapsulation(facing: plan.interfaces)?.fouPorts ?? [])
        for p in state.fouPorts.sorted() where !wanted.contains(p) && host.fouPorts.contains(p) {
            plan.actions.append(.removeFOUPort(p))
        }
    }

    /// ip6tnl modes rsagent changed for an earlier profile (no more IPv4 VIPs inside IPv6):
    /// put back, unless someone changed them since.
    static func planStaleTunnelModes(_ profile: Profile, host: HostState, state: AgentState, plan: inout Plan) {
        guard plan.conflicts.isEmpty else { return }
        let wanted = Set(
            profile.decapsulation(facing: plan.interfaces)?.devices.filter(\.needsAnyMode).map(\.name) ?? [])
        for (dev, saved) in state.tunnelModes.sorted(by: { $0.key < $1.key }) where !wanted.contains(dev) {
            if let now = host.link(named: dev)?.tunnel?.proto, now == saved.written {
                plan.actions.append(.restoreTunnelMode(device: dev, from: now, to: saved.original))
            }
        }
    }

    /// The `rp_filter` value each device needs, in order: in tun mode each decapsulating
    /// device that takes in IPv4 (`Decapsulation.rpFilter`: the profile's value where the
    /// device holds the VIPs, else 0), then the facing interfaces (the profile's value). None
    /// for `rp_filter: leave`.
    static func rpFilterTargets(_ profile: Profile, interfaces: [String]) -> [(device: String, value: Int)] {
        guard let target = profile.rpFilter.value else { return [] }
        var out: [(device: String, value: Int)] = []
        if let d = profile.decapsulation(facing: interfaces) {
            for dev in d.devices where d.rpFilter[dev.name] != nil {
                out.append((dev.name, dev.name == profile.deviceName ? target : 0))
            }
        }
        for i in interfaces where !out.contains(where: { $0.device == i }) { out.append((i, target)) }
        return out
    }

    /// Sysctl writes. ARP values are a floor (`arp_ignore` 2 is as safe as 1; effective =
    /// max(all, dev)); `rp_filter` is an exact target. Nothing is written that already holds.
    static func sysctlActions(_ profile: Profile, interfaces: [String], host: HostState) -> [Action] {
        var out: [Action] = []
        func write(_ key: SysctlKey, _ value: Int) {
            if !out.contains(where: { if case .setSysctl(key, _, _) = $0 { true } else { false } }) {
                out.append(.setSysctl(key: key, from: host.sysctls[key], to: value))
            }
        }
        for (name, floor) in [(SysctlName.arpIgnore, profile.arp.ignore), (.arpAnnounce, profile.arp.announce)] {
            switch profile.arp.scope {
            case .all:
                let k = SysctlKey(SysctlKey.allInterfaces, name)
                if (host.sysctls[k] ?? 0) < floor { write(k, floor) }
            case .interfaces:
                for i in interfaces {
                    let k = SysctlKey(i, name)
                    if host.effective(k) < floor { write(k, floor) }
                }
            }
        }
        let all = SysctlKey(SysctlKey.allInterfaces, .rpFilter)
        for (d, value) in rpFilterTargets(profile, interfaces: interfaces) {
            let k = SysctlKey(d, .rpFilter)
            // Loose (2) is the maximum, so the device value alone decides. Off (0) also needs
            // `all` at 0, or max(all, dev) keeps filtering.
            if host.sysctls[k] != value && !(value == 2 && host.effective(k) == 2) { write(k, value) }
            if value == 0 && (host.sysctls[all] ?? 0) != 0 { write(all, 0) }
        }
        return out
    }

    /// The sysctls this profile writes (when they fall short): a saved sysctl outside this set
    /// is no longer the profile's business and is restored.
    static func wantedSysctlKeys(_ profile: Profile, interfaces: [String]) -> Set<SysctlKey> {
        var keys: Set<SysctlKey> = []
        for name in [SysctlName.arpIgnore, .arpAnnounce] {
            switch profile.arp.scope {
            case .all: keys.insert(SysctlKey(SysctlKey.allInterfaces, name))
            case .interfaces: for i in interfaces { keys.insert(SysctlKey(i, name)) }
            }
        }
        let targets = rpFilterTargets(profile, interfaces: interfaces)
        for (d, _) in targets { keys.insert(SysctlKey(d, .rpFilter)) }
        if targets.contains(where: { $0.value == 0 }) { keys.insert(SysctlKey(SysctlKey.allInterfaces, .rpFilter)) }
        return keys
    }

    /// Sysctls rsagent changed for an earlier profile that this one no longer asks for (an
    /// interface dropped from `interfaces:`, `arp.scope` or `rp_filter` changed): put back as
    /// they were, unless someone changed them since (then `down` warns). An interface that only
    /// stopped being the default route's keeps its settings: it may still face the director,
    /// and `down` restores it.
    static func planStaleSysctls(
        _ profile: Profile, interfaces: [String], host: HostState, state: AgentState, plan: inout Plan
    ) {
        guard plan.conflicts.isEmpty else { return }
        let wanted = wantedSysctlKeys(profile, interfaces: interfaces)
        for (text, saved) in state.sysctls.sorted(by: { $0.key < $1.key }) {
            guard let key = SysctlKey(parsing: text), !wanted.contains(key) else { continue }
            let isFacing = key.interface != SysctlKey.allInterfaces && key.interface != profile.deviceName
            if isFacing && profile.interfaces == nil && !interfaces.contains(key.interface) { continue }
            guard let now = host.sysctls[key], now == saved.written else { continue }
            plan.actions.append(.restoreSysctl(key: key, from: now, to: saved.original))
        }
    }

    /// The sysctls `sysctlActions` judges for this profile: the ones the daemon re-reads
    /// between passes, because the kernel announces no change to `arp_ignore`/`arp_announce`.
    public static func assertedSysctlKeys(_ profile: Profile, interfaces: [String]) -> [SysctlKey] {
        var keys: [SysctlKey] = []
        for name in [SysctlName.arpIgnore, .arpAnnounce] {
            keys.append(SysctlKey(SysctlKey.allInterfaces, name))
            if profile.arp.scope == .interfaces { keys += interfaces.map { SysctlKey($0, name) } }
        }
        let targets = rpFilterTargets(profile, interfaces: interfaces)
        if !targets.isEmpty {
            keys.append(SysctlKey(SysctlKey.allInterfaces, .rpFilter))
            keys += targets.map { SysctlKey($0.device, .rpFilter) }
        }
        return keys
    }

    /// The sysctl writes that `values` (read from `assertedSysctlKeys`) call for: empty while
    /// nothing drifted.
    public static func sysctlDrift(_ profile: Profile, interfaces: [String], values: [SysctlKey: Int]) -> [Action] {
        sysctlActions(profile, interfaces: interfaces, host: HostState(sysctls: values))
    }

    static func planAddresses(_ profile: Profile, host: HostState, options: Options, plan: inout Plan) {
        let device = profile.deviceName
        let deviceIndex = host.link(named: device)?.index
        let addresses = host.addresses
        // Address → position of its first occurrence; rare repeats (the same address on two
        // devices) on the side. `matched` marks what a VIP claimed; owned and unclaimed is stale.
        var first: [IPAddress: Int] = [:]
        first.reserveCapacity(addresses.count)
        var repeats: [IPAddress: [Int]] = [:]
        for (i, a) in addresses.enumerated() {
            // One hash operation in the common case; on a repeat, put the first one back.
            if let earlier = first.updateValue(i, forKey: a.address) {
                first[a.address] = earlier
                repeats[a.address, default: []].append(i)
            }
        }
        var matched = [Bool](repeating: false, count: addresses.count)
        var adds: [Action] = []
        var removals: [Action] = []
        for vip in profile.vips {
            guard let at = first[vip.address] else {
                adds.append(.addAddress(vip.address, device: device))
                continue
            }
            var onDevice: Address?
            func consider(_ i: Int) {
                matched[i] = true
                let present = addresses[i]
                if present.index == deviceIndex { onDevice = present; return }
                let dev = host.name(of: present.index)
                if present.isOwned {
                    removals.append(.removeAddress(present.address, prefix: present.prefixLength, device: dev))
                } else {
                    plan.conflicts.append(elsewhereConflict(vip.address, present, device: dev))
                }
            }
            consider(at)
            repeats[vip.address]?.forEach(consider)
            if let here = onDevice {
                if here.isOwned { continue }
                if options.adopt {
                    adds.append(.adoptAddress(vip.address, prefix: here.prefixLength, device: device))
                } else {
                    plan.conflicts.append(
                        Conflict(
                            id: "vip.foreign",
                            message:
                                "\(vip.address)/\(here.prefixLength) is already on \(device) but was not added by rsagent (no owner mark); run `rsagent apply --adopt` to take it over (rsagent then removes it on `down`), or drop it from the profile"
                        ))
                }
            } else {
                adds.append(.addAddress(vip.address, device: device))
            }
        }
        for (i, a) in addresses.enumerated() where a.isOwned && !matched[i] {
            removals.append(.removeAddress(a.address, prefix: a.prefixLength, device: host.name(of: a.index)))
        }
        plan.actions += adds + removals
    }

    /// A VIP that someone else put on another device. Never answered with a command that
    /// deletes it: it may be this host's own address, and deleting that cuts the host off.
    static func elsewhereConflict(_ vip: IPAddress, _ present: Address, device dev: String) -> Conflict {
        if present.prefixLength < vip.hostPrefixLength {
            return Conflict(
                id: "vip.own_address",
                message:
                    "VIP \(vip) is this host's own address (\(present.address)/\(present.prefixLength) on \(dev)), not a virtual IP: a realserver cannot hold its own address as a VIP; fix the VIP in the profile (the director balances VIPs to realservers' own addresses)"
            )
        }
        return Conflict(
            id: "vip.elsewhere",
            message:
                "VIP \(vip) is also on \(dev) as \(present.address)/\(present.prefixLength), not added by rsagent: this host would answer ARP for it there and take the director's traffic; if it is a leftover hand-made VIP, remove it from \(dev) yourself, otherwise drop it from the profile"
        )
    }

    /// Devices rsagent created for an earlier profile and no longer needs.
    static func planStaleDevices(_ profile: Profile, host: HostState, state: AgentState, plan: inout Plan) {
        let needed = Set(
            [profile.deviceName] + (profile.decapsulation(facing: plan.interfaces)?.devices.map(\.name) ?? []))
        for (name, kind) in deletableDevices(host: host, state: state).sorted(by: { $0.key < $1.key })
        where !needed.contains(name) {
            if OwnTunnel.isOwnName(name, kind: kind), let l = host.link(named: name) {
                plan.actions.append(.deleteOwnTunnel(ownTunnel(l, host: host)))
            } else {
                plan.actions.append(.deleteDevice(name: name, kind: kind))
            }
        }
    }

    /// The devices rsagent recorded as its own that are still there and of a kind rsagent
    /// creates (a dummy device, a fallback tunnel device it had to make itself, or a tunnel of
    /// its own), with their kind. A name in
    /// the state file now held by another kind of device (someone deleted ours and made a
    /// VLAN of that name) is not rsagent's to delete.
    static func deletableDevices(host: HostState, state: AgentState) -> [String: String] {
        var out: [String: String] = [:]
        for name in state.devices {
            if let kind = host.link(named: name)?.kind,
                kind == "dummy" || DecapDevice.fallbackNames[kind] == name || OwnTunnel.isOwnName(name, kind: kind)
            {
                out[name] = kind
            }
        }
        return out
    }

    /// `rsagent down`: remove every marked address, delete rsagent's devices, restore sysctls
    /// that still hold rsagent's value, set down what rsagent set up. Needs no profile.
    public static func planDown(host: HostState, state: AgentState) -> Plan {
        var plan = Plan()
        let deleted = deletableDevices(host: host, state: state)
        for a in host.ownedAddresses.sorted(by: { $0.address < $1.address }) {
            let dev = host.name(of: a.index)
            if deleted[dev] == nil {
                plan.actions.append(.removeAddress(a.address, prefix: a.prefixLength, device: dev))
            }
        }
        for (name, kind) in deleted.sorted(by: { $0.key < $1.key }) {
            plan.actions.append(.deleteDevice(name: name, kind: kind))
        }
        for (text, saved) in state.sysctls.sorted(by: { $0.key < $1.key }) {
            // A deleted device takes its settings with it.
            guard let key = SysctlKey(parsing: text), deleted[key.interface] == nil else { continue }
            let now = host.sysctls[key]
            if now == saved.written {
                plan.actions.append(.restoreSysctl(key: key, from: now, to: saved.original))
            } else if now != saved.original && now != nil {
                plan.warnings.append(
                    "\(key) was changed by someone else since rsagent set it to \(saved.written) (now \(now!), before rsagent \(saved.original)); left as it is"
                )
            }
        }
        for (dev, saved) in state.tunnelModes.sorted(by: { $0.key < $1.key }) where deleted[dev] == nil {
            guard let now = host.link(named: dev)?.tunnel?.proto else { continue }
            if now == saved.written {
                plan.actions.append(.restoreTunnelMode(device: dev, from: now, to: saved.original))
            } else if now != saved.original {
                plan.warnings.append(
                    "\(dev) mode was changed by someone else since rsagent set it to \(DecapDevice.modeName(saved.written)) (now \(DecapDevice.modeName(now)), before rsagent \(DecapDevice.modeName(saved.original))); left as it is"
                )
            }
        }
        for p in state.fouPorts.sorted() where host.fouPorts.contains(p) { plan.actions.append(.removeFOUPort(p)) }
        if MSSRuleset.owned(in: host.nftTables) != nil { plan.actions.append(.removeMSSClamp) }
        for name in state.linksSetUp.sorted() where deleted[name] == nil {
            if let l = host.link(named: name), l.isUp { plan.actions.append(.setLinkDown(name: name)) }
        }
        return plan
    }
}

extension SysctlKey {
    /// Parses `net.ipv4.conf.DEV.NAME` (DEV may itself contain dots, as VLAN devices do).
    public init?(parsing text: String) {
        let prefix = "net.ipv4.conf."
        guard text.hasPrefix(prefix), let dot = text.lastIndex(of: ".") else { return nil }
        let dev = String(text[text.index(text.startIndex, offsetBy: prefix.count)..<dot])
        guard !dev.isEmpty, let name = SysctlName(rawValue: String(text[text.index(after: dot)...])) else { return nil }
        self.init(dev, name)
    }
}
