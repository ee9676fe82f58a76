import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// One diagnostic result of `rsagent check`.
public struct Finding: Codable, Sendable, Equatable {
    public enum Verdict: String, Codable, Sendable, Comparable {
        case pass, warn, fail
        public static func < (l: Self, r: Self) -> Bool {
            [Verdict.fail, .warn, .pass].firstIndex(of: l)! < [Verdict.fail, .warn, .pass].firstIndex(of: r)!
        }
    }
    /// Stable: `vip.present`, `arp.ignore`, `route.in`, `route.reply`, `rpfilter`, `tunnel.up`…
    public var id: String
    public var verdict: Verdict
    /// One line: what holds or what is wrong, and the consequence.
    public var summary: String
    /// What was read: values, the kernel's answer.
    public var evidence: String
    /// A command a person can paste, or empty when nothing is to be done.
    public var fix: String

    /// What holds: nothing to do.
    static func pass(_ id: String, _ summary: String, evidence: String) -> Finding {
        Finding(id: id, verdict: .pass, summary: summary, evidence: evidence, fix: "")
    }
    /// Worth knowing, with what to do about it.
    static func warn(_ id: String, _ summary: String, evidence: String, fix: String) -> Finding {
        Finding(id: id, verdict: .warn, summary: summary, evidence: evidence, fix: fix)
    }
    /// What is wrong, its consequence in `summary`, and the fix.
    static func fail(_ id: String, _ summary: String, evidence: String, fix: String) -> Finding {
        Finding(id: id, verdict: .fail, summary: summary, evidence: evidence, fix: fix)
    }
}

/// The kernel's answer to one route lookup, as the checks need it (the error, when any, by
/// errno: EINVAL on 6.18 and EXDEV on Debian's 6.1 both mean reverse-path filtering).
public enum RouteAnswer: Sendable, Equatable {
    case route(RouteLookup)
    case refused(errno: Int32, text: String)
}

/// Everything the checks look at, read beforehand: the checks themselves are pure.
public struct CheckObservation: Sendable {
    public var host: HostState
    public var interfaces: [String]
    public var clients: [IPAddress]
    /// Keyed by `RouteQuery`.
    public var routes: [RouteQuery: RouteAnswer]
    /// From the kernel's socket diagnostics.
    public var listeners: [ListeningSocket]
    /// Why the listeners could not be read, when they could not (the kernel's words).
    public var listenersUnavailable: String?
    public init(
        host: HostState, interfaces: [String], clients: [IPAddress], routes: [RouteQuery: RouteAnswer],
        listeners: [ListeningSocket] = []
    ) {
        self.host = host
        self.interfaces = interfaces
        self.clients = clients
        self.routes = routes
        self.listeners = listeners
    }
}

public enum Checks {
    /// The route lookups the checks need: for each client and IPv4/IPv6-matching VIP, inbound
    /// (from the client to the VIP, arriving where the director sends: `tunl0` for tun, each
    /// facing interface for dr) and the reply path (from the VIP to the client).
    public static func queries(_ profile: Profile, host: HostState, interfaces: [String], clients: [IPAddress])
        -> [RouteQuery]
    {
        let decap = profile.decapsulation(facing: interfaces)
        var out: [RouteQuery] = []
        for vip in profile.vips {
            // In tun mode the packet arrives on the device that decapsulates it, one per
            // encapsulation × outer family that carries the VIP's family.
            let arrivals =
                decap.map { d in d.devices.filter { $0.inner.contains(IPFamily(of: vip.address)) }.map(\.name) }
                ?? interfaces
            for client in clients where client.isIPv4 == vip.address.isIPv4 {
                for dev in arrivals {
                    if let i = host.link(named: dev)?.index {
                        out.append(RouteQuery(to: vip.address, from: client, iif: i))
                    }
                }
                out.append(RouteQuery(to: client, from: vip.address))
            }
        }
        return out
    }

    public static func run(_ profile: Profile, _ o: CheckObservation) -> [Finding] {
        var out: [Finding] = []
        out += vipPlacement(profile, o)
        out += arp(profile, o)
        if profile.mode == .tun { out += tunnel(profile, o) + mtu(profile, o) }
        out += routes(profile, o)
        out += services(profile, o)
        return out.sorted { ($0.verdict, $0.id) < ($1.verdict, $1.id) }
    }

    static func vipPlacement(_ p: Profile, _ o: CheckObservation) -> [Finding] {
        let device = o.host.link(named: p.deviceName)
        return p.vips.flatMap { vip -> [Finding] in
            let present = o.host.addresses.filter { $0.address == vip.address }
            let onDevice = present.contains { $0.index == device?.index }
            var f: [Finding] = []
            if onDevice {
                f.append(
                    .pass(
                        "vip.present", "\(vip.address) is on \(p.deviceName)",
                        evidence: "ip addr show dev \(p.deviceName): \(vip.address)/\(vip.address.hostPrefixLength)"))
            } else {
                f.append(
                    .fail(
                        "vip.present",
                        "\(vip.address) is not on \(p.deviceName): the kernel drops the director's packets for it",
                        evidence: "not in ip addr show dev \(p.deviceName)", fix: "rsagent apply -c PROFILE"))
            }
            for other in present where other.index != device?.index {
                let dev = o.host.name(of: other.index)
                let arping = !(o.host.link(other.index)?.isNoARP ?? false)
                let evidence = "ip addr show dev \(dev): \(other.address)/\(other.prefixLength)"
                if !other.isOwned && other.prefixLength < vip.address.hostPrefixLength {
                    // The host's own address: the fix is the profile, never deleting it.
                    f.append(
                        .fail(
                            "vip.own_address", "\(vip.address) is this host's own address on \(dev), not a virtual IP",
                            evidence: evidence, fix: "correct the VIP in the profile (-c PROFILE)"))
                    continue
                }
                f.append(
                    Finding(
                        id: "vip.elsewhere", verdict: arping ? .fail : .warn,
                        summary: "\(vip.address) is also on \(dev)"
                            + (arping ? ", an interface that answers ARP: clients may bypass the director" : ""),
                        evidence: evidence + (other.isOwned ? " (rsagent's)" : " (not added by rsagent)"),
                        fix: other.isOwned
                            ? "rsagent apply -c PROFILE"
                            : "if it is a leftover hand-made VIP, remove it from \(dev) yourself; otherwise drop \(vip.address) from the profile"
                    ))
            }
            return f
        }
    }

    static func arp(_ p: Profile, _ o: CheckObservation) -> [Finding] {
        guard p.vips.contains(where: { $0.address.isIPv4 }) else { return [] }  // IPv6 has no ARP problem
        return o.interfaces.flatMap { dev -> [Finding] in
            [
                (
                    SysctlName.arpIgnore, p.arp.ignore,
                    "answers ARP requests for the VIPs: clients may send their traffic straight here, bypassing the director"
                ),
                (
                    .arpAnnounce, p.arp.announce,
                    "may announce a VIP as the source of its own ARP requests, teaching the LAN that the VIP lives here"
                ),
            ]
            .map { name, want, consequence in
                let k = SysctlKey(dev, name)
                let all = o.host.sysctls[k.allKey], own = o.host.sysctls[k]
                let eff = o.host.effective(k)
                let evidence =
                    "\(k.allKey) = \(all.map(String.init) ?? "?"), \(k) = \(own.map(String.init) ?? "?"): effective \(eff) (the larger)"
                let id = name == .arpIgnore ? "arp.ignore" : "arp.announce"
                if eff >= want {
                    return .pass(id, "\(dev): \(name.rawValue) \(eff) (≥ \(want))", evidence: evidence)
                }
                return .fail(
                    id, "\(dev): \(name.rawValue) is \(eff): this host \(consequence)", evidence: evidence,
                    fix: "sysctl -w \(k)=\(want)")
            }
        }
    }

    /// Each decapsulating device exists and is up, its reverse-path filter lets the inner
    /// packets through, and each FOU port GUE needs is there.
    static func tunnel(_ p: Profile, _ o: CheckObservation) -> [Finding] {
        guard let d = p.decapsulation(facing: o.interfaces) else { return [] }
        var out: [Finding] = []
        for dev in d.devices {
            let carries = dev.inner.sorted().map { $0 == .ipv4 ? "IPv4" : "IPv6" }.joined(separator: " and ")
            let outer = dev.outer == .ipv4 ? "IPv4" : "IPv6"
            guard let t = o.host.link(named: dev.name) else {
                out.append(
                    .fail(
                        "tunnel.present",
                        "\(dev.name) does not exist: the director's \(outer) tunnel packets (\(carries) inside) are not decapsulated",
                        evidence: "no link \(dev.name)", fix: "rsagent apply -c PROFILE (or modprobe \(dev.module))"))
                continue
            }
            out.append(
                t.isUp
                    ? .pass("tunnel.up", "\(t.name) is up", evidence: "ip link show \(t.name): UP")
                    : .fail(
                        "tunnel.up", "\(t.name) is down: the director's \(outer) tunnel packets are dropped",
                        evidence: "ip link show \(t.name): not UP",
                        fix: "rsagent apply -c PROFILE (or ip link set \(t.name) up)"))
            out += tunnelSettings(p, dev, t, o)
            guard let wanted = d.rpFilter[dev.name] else { continue }  // IPv6 inside: no rp_filter
            let k = SysctlKey(dev.name, .rpFilter)
            let eff = o.host.effective(k)
            let evidence =
                "effective rp_filter \(eff) (all \(o.host.sysctls[k.allKey] ?? 0), \(t.name) \(o.host.sysctls[k] ?? 0))"
            if dev.name == p.deviceName {
                // It holds the VIPs: loose works; strict drops clients routed back elsewhere.
                out.append(
                    eff == 1
                        ? .warn(
                            "rpfilter.\(t.name)",
                            "\(t.name): strict reverse-path filtering; decapsulated packets from clients routed elsewhere are dropped",
                            evidence: evidence, fix: "sysctl -w \(k)=2")
                        : .pass("rpfilter.\(t.name)", "\(t.name): rp_filter \(eff) (not strict)", evidence: evidence))
            } else if eff != 0 {
                out.append(
                    .fail(
                        "rpfilter.\(t.name)",
                        "\(t.name): reverse-path filtering is on (\(eff)) on a device without an IPv4 address, which drops every decapsulated IPv4 packet, loose mode included",
                        evidence: evidence,
                        fix: "sysctl -w \(k)=\(wanted) \(k.allKey)=0 (rsagent apply does both)"))
            } else {
                out.append(
                    .pass(
                        "rpfilter.\(t.name)", "\(t.name): rp_filter off, as a device without an address needs",
                        evidence: evidence))
            }
        }
        for port in d.fouPorts {
            out.append(
                o.host.fouPorts.contains(port)
                    ? .pass(
                        "tunnel.fou", "FOU port \(port) takes in GUE", evidence: "ip fou show: port \(port.port) gue")
                    : .fail(
                        "tunnel.fou",
                        "FOU port \(port) is missing: the director's GUE packets to UDP port \(port.port) are dropped",
                        evidence: "not in ip\(port.family == .ipv6 ? " -6" : "") fou show",
                        fix: "rsagent apply -c PROFILE (or \(port.command(.add)))"))
        }
        return out
    }

    /// What a decapsulating device must be set to beyond up: ip6tnl's mode when IPv4 arrives
    /// inside IPv6, a tunnel of rsagent's own its link and checksum flag; and, for ip6tnl with
    /// IPv6 VIPs, whether packets get through its outer-source test at all.
    static func tunnelSettings(_ p: Profile, _ dev: DecapDevice, _ t: Link, _ o: CheckObservation) -> [Finding] {
        var out: [Finding] = []
        if dev.needsAnyMode, let proto = t.tunnel?.proto {
            let mode = DecapDevice.modeName(proto)
            out.append(
                dev.takes(proto: proto)
                    ? .pass(
                        "tunnel.mode", "\(t.name) is in mode \(mode): it takes IPv4 inside IPv6",
                        evidence: "ip -d link show \(t.name): \(mode)")
                    : .fail(
                        "tunnel.mode",
                        "\(t.name) is in mode \(mode): it drops the director's IPv4-in-IPv6 packets without a trace",
                        evidence: "ip -d link show \(t.name): \(mode)",
                        fix: "rsagent apply -c PROFILE (or ip -6 tunnel change \(t.name) mode any)"))
        }
        if let own = dev.own {
            let link = o.host.link(named: own.link)?.index.rawValue
            let evidence =
                "ip -d link show \(t.name): dev \(o.host.name(of: InterfaceIndex(rawValue: t.tunnel?.link ?? 0)))\(t.tunnel?.inputChecksum == true ? " icsum" : " (no icsum)")"
            out.append(
                t.kind == own.kind && t.tunnel?.link == link && t.tunnel?.inputChecksum == own.checksums
                    ? .pass(
                        "tunnel.settings", "\(t.name) takes checksummed GRE arriving on \(own.link)", evidence: evidence
                    )
                    : .fail(
                        "tunnel.settings",
                        "\(t.name) is not set as rsagent made it (\(own.command)): the director's checksummed GRE packets on \(own.link) are dropped",
                        evidence: evidence, fix: "rsagent apply -c PROFILE"))
        }
        // ip6_tunnel drops a packet whose outer source is an address of this host. A director
        // that holds a VIP6 as a preferred /128 picks it as the source towards this realserver,
        // and this realserver holds that VIP too. Dropped packets are counted nowhere, so the
        // evidence is ip6tnl0 having decapsulated nothing at all.
        if dev.kind == "ip6tnl", let vip6 = p.vips.first(where: { !$0.address.isIPv4 })?.address {
            let received = t.tunnel?.received ?? 0
            out.append(
                received > 0
                    ? .pass(
                        "tunnel.source", "\(t.name) takes in the director's IPv6 tunnel packets",
                        evidence: "\(t.name) rx_packets \(received)")
                    : .warn(
                        "tunnel.source",
                        "\(t.name) has decapsulated no packet yet: if the director sends already, it may be sending from a VIP6 it holds (such as \(vip6)), and ip6tnl drops tunnel packets whose outer source is an address of this host, which holds that VIP too",
                        evidence: "\(t.name) rx_packets 0",
                        fix:
                            "on the director, keep its VIP6s from being chosen as source: ip -6 addr change \(vip6)/128 dev DEV preferred_lft 0 (keepalived: virtual_ipaddress { \(vip6)/128 dev DEV preferred_lft 0 }), or use tunnel.type gre"
                    ))
        }
        return out
    }

    /// Something must listen on each declared service port, on the VIP or on a wildcard address
    /// (an IPv6 wildcard usually takes IPv4 too).
    static func services(_ p: Profile, _ o: CheckObservation) -> [Finding] {
        p.vips.flatMap { vip in
            vip.services.map { svc -> Finding in
                let proto: ListeningSocket.Proto = svc.proto == .tcp ? .tcp : .udp
                let found = o.listeners.filter { l in
                    l.proto == proto && l.port == svc.port
                        && (l.address == vip.address
                            || (l.isWildcard && (l.address.isIPv4 == vip.address.isIPv4 || !l.address.isIPv4)))
                }
                let id = "service.\(svc.proto.rawValue)\(svc.port)"
                if let why = o.listenersUnavailable {
                    return .warn(
                        id, "cannot tell whether anything listens on \(svc) for \(vip.address)",
                        evidence: "socket diagnostics: \(why)", fix: "modprobe inet_diag tcp_diag udp_diag")
                }
                guard let l = found.first else {
                    return .warn(
                        id,
                        "nothing listens on \(svc) for \(vip.address): clients the director sends here get a reset (or nothing, for UDP)",
                        evidence:
                            "socket diagnostics: no \(svc.proto.rawValue) socket on \(vip.address) or a wildcard address, port \(svc.port)",
                        fix:
                            "start the service listening on \(Endpoint(host: vip.address, port: svc.port)) or on the wildcard address"
                    )
                }
                return .pass(
                    id, "\(svc) on \(vip.address): listening on \(Endpoint(host: l.address, port: l.port))",
                    evidence: "socket diagnostics: \(svc.proto.rawValue) \(Endpoint(host: l.address, port: l.port))")
            }
        }
    }

    /// LVS-Tun: the director's headers (20 to 52 bytes) no longer let a full-size client segment
    /// fit the path; advise clamping the MSS this host advertises from the VIP, by the largest
    /// overhead of the encapsulations the profile takes in.
    static func mtu(_ p: Profile, _ o: CheckObservation) -> [Finding] {
        let facing = o.interfaces.compactMap { o.host.link(named: $0) }
        guard let smallest = facing.map(\.mtu).min() else { return [] }
        let worst = (p.tunnel ?? TunnelSettings()).largestOverhead
        if let wanted = MSSRuleset(p, facingMTU: smallest) {
            let present = MSSRuleset.owned(in: o.host.nftTables)
            let what = String(wanted.comment.dropFirst(MSSRuleset.mark.count + 2))
            return [
                present?.comment == wanted.comment
                    ? .pass(
                        "mtu.tunnel", "SYN-ACKs from the VIPs advertise a clamped MSS: \(what)",
                        evidence: "nft list table inet \(MSSRuleset.table): comment \"\(present!.comment ?? "")\"")
                    : .fail(
                        "mtu.tunnel",
                        "the MSS clamp the profile asks for is not in place: clients sending full-size segments may stall",
                        evidence: present.map { "table inet \(MSSRuleset.table) holds: \($0.comment ?? "")" }
                            ?? "no nftables table inet \(MSSRuleset.table)",
                        fix: "rsagent apply -c PROFILE")
            ]
        }
        // One finding per VIP family (a thousand VIPs share the advice), naming its first VIP.
        let firsts = [p.vips.first { $0.address.isIPv4 }, p.vips.first { !$0.address.isIPv4 }].compactMap { $0 }
        return firsts.map { v -> Finding in
            // The segment inside: the path's MTU less the tunnel, the inner IP and TCP headers.
            let mss = MSSRuleset.fitting(mtu: smallest, overhead: worst.bytes, ipv4: v.address.isIPv4)
            return .warn(
                "mtu.tunnel",
                "the director's \(worst.what) headers cost \(worst.bytes) bytes: clients of \(v.address) sending full \(smallest)-byte packets need PMTU discovery to work end to end, or large requests stall",
                evidence:
                    "facing MTU \(smallest) (\(facing.map { "\($0.name) \($0.mtu)" }.joined(separator: ", "))), \(worst.what) overhead \(worst.bytes)",
                fix: "set `tunnel: { mss: auto }` in the profile (or `mss: \(mss)`), then rsagent apply -c PROFILE"
            )
        }
    }

    /// One finding per route lookup: the director's packets must be delivered here (`route.in`),
    /// and replies from the VIP must leave by a real interface (`route.reply`).
    static func routes(_ p: Profile, _ o: CheckObservation) -> [Finding] {
        // Sorted by value (formatting addresses inside the comparator cost most of a 2,000-lookup run).
        let ordered = o.routes.sorted {
            ($0.key.to, $0.key.from ?? $0.key.to, $0.key.iif?.rawValue ?? -1)
                < ($1.key.to, $1.key.from ?? $1.key.to, $1.key.iif?.rawValue ?? -1)
        }
        return ordered.compactMap { q, answer in
            guard let from = q.from else { return nil }
            if let iif = q.iif { return inbound(to: q.to, from: from, on: o.host.name(of: iif), answer, o.host) }
            // Replies need the VIP as a local source; without it, vip.present already fails.
            guard o.host.addresses.contains(where: { $0.address == from }) else { return nil }
            return reply(to: q.to, from: from, answer, o.host)
        }
    }

    /// `route.in`: a packet from `from` to the VIP `to`, arriving on `dev` as the director sends it.
    static func inbound(to: IPAddress, from: IPAddress, on dev: String, _ answer: RouteAnswer, _ host: HostState)
        -> Finding
    {
        let what = "ip route get \(to) from \(from) iif \(dev)"
        let packet = "\(from) → \(to) arriving on \(dev)"
        switch answer {
        case .route(let r) where r.kind == .local:
            return .pass("route.in", "\(packet) is delivered locally", evidence: "\(what): local")
        case .route(let r):
            return .fail(
                "route.in", "\(packet) is not delivered here (\(r.kind.rawValue)): is the VIP on this host?",
                evidence: "\(what): \(r.kind.rawValue)", fix: "rsagent apply -c PROFILE")
        case .refused(let e, let text) where e == EINVAL || e == EXDEV:
            let k = SysctlKey(dev, .rpFilter)
            return .fail(
                "route.in",
                "\(packet) is dropped by reverse-path filtering: the route back to \(from) leaves by another interface and \(dev) filters strictly",
                evidence:
                    "\(what): \(text) (rp_filter effective \(host.effective(k)): all \(host.sysctls[k.allKey] ?? 0), \(dev) \(host.sysctls[k] ?? 0))",
                fix: "sysctl -w \(k)=2")
        case .refused(let e, let text) where e == EHOSTUNREACH:
            return .fail(
                "route.in",
                "\(packet) is refused: \(to) is not a local address here (and this host does not forward)",
                evidence: "\(what): \(text)", fix: "rsagent apply -c PROFILE")
        case .refused(_, let text):
            return .fail(
                "route.in", "\(packet) has no route: \(text)", evidence: "\(what): \(text)",
                fix: "ip route show; ip rule show")
        }
    }

    /// `route.reply`: a reply from the VIP `from` to the client `to`.
    static func reply(to: IPAddress, from: IPAddress, _ answer: RouteAnswer, _ host: HostState) -> Finding {
        let what = "ip route get \(to) from \(from)"
        let replies = "replies from \(from) to \(to)"
        switch answer {
        case .route(let r) where r.kind == .unicast:
            let dev = r.oif.map { host.name(of: $0) } ?? "?"
            let virtual =
                r.oif.flatMap { host.link($0) }.map {
                    $0.isLoopback || DecapDevice.fallbackNames.values.contains($0.name)
                } ?? true
            if virtual {
                return .fail(
                    "route.reply", "\(replies) would leave by \(dev), which goes nowhere",
                    evidence: "\(what): dev \(dev)",
                    fix: "ip route add default via GATEWAY dev eth0")
            }
            return .pass(
                "route.reply", "\(replies) leave by \(dev)\(r.gateway.map { " via \($0)" } ?? " (directly connected)")",
                evidence: "\(what): \(r.kind.rawValue) dev \(dev)")
        case .route(let r):
            return .fail(
                "route.reply", "\(replies) have no usable route (\(r.kind.rawValue))",
                evidence: "\(what): \(r.kind.rawValue)", fix: "ip route add default via GATEWAY")
        case .refused(_, let text):
            return .fail(
                "route.reply", "\(replies) cannot be routed: \(text)", evidence: "\(what): \(text)",
                fix: "ip route add default via GATEWAY")
        }
    }
}

extension Checks {
    /// The clients the route checks use: a finding for each VIP family with none to test (no
    /// silent skip), and for each `--client` that matches no VIP's family.
    public static func clients(_ p: Profile, given: [IPAddress], used: [IPAddress]) -> [Finding] {
        var out: [Finding] = []
        for v4 in [true, false] where p.vips.contains(where: { $0.address.isIPv4 == v4 }) {
            guard !used.contains(where: { $0.isIPv4 == v4 }) else { continue }
            let family = v4 ? "IPv4" : "IPv6"
            out.append(
                .warn(
                    "client.none",
                    "no \(family) client address to test with: the route checks (route.in, route.reply) for the \(family) VIPs were skipped",
                    evidence: given.isEmpty
                        ? "the default test address \(v4 ? "203.0.113.77" : "2001:db8:ffff::77") is on a local network here, and there is no \(family) default gateway"
                        : "no \(family) address among --client \(given.map(\.description).joined(separator: ", "))",
                    fix:
                        "rsagent check -c PROFILE --client \(v4 ? "CLIENT-IPv4" : "CLIENT-IPv6") (a real client's address, routed like the director's clients)"
                ))
        }
        for c in given where !p.vips.contains(where: { $0.address.isIPv4 == c.isIPv4 }) {
            out.append(
                .warn(
                    "client.family",
                    "--client \(c) is \(c.isIPv4 ? "IPv4" : "IPv6"), but every VIP is \(c.isIPv4 ? "IPv6" : "IPv4"): no route was tested from it",
                    evidence: "VIPs: \(p.vips.map(\.address.description).joined(separator: ", "))",
                    fix: "give a --client of the VIPs' family"))
        }
        return out
    }
}

/// Other programs that may remove addresses they did not configure, as read from the host.
public struct ManagerObservation: Sendable, Equatable {
    public var networkdRunning = false
    /// Some `.network` file says `KeepConfiguration=` yes or static.
    public var networkdKeepsConfiguration = false
    public var networkManagerRunning = false
    /// NetworkManager's configuration lists `lo` (or the VIP device) as unmanaged.
    public var networkManagerIgnoresVIPDevice = false
    public init() {}
}

extension Checks {
    public static func managers(_ p: Profile, _ m: ManagerObservation) -> [Finding] {
        var out: [Finding] = []
        if m.networkdRunning {
            out.append(
                m.networkdKeepsConfiguration
                    ? .pass(
                        "manager.networkd", "systemd-networkd keeps foreign configuration",
                        evidence: "KeepConfiguration= set in a .network file")
                    : .warn(
                        "manager.networkd",
                        "systemd-networkd is running without KeepConfiguration=: on restart or reconfigure it may remove the VIPs it did not add",
                        evidence:
                            "systemd-networkd running; no KeepConfiguration= in /etc/systemd/network, /run/systemd/network, /usr/lib/systemd/network",
                        fix:
                            "add KeepConfiguration=static to the [Network] section of the .network file for \(p.deviceName) and the facing interfaces, or keep `rsagent run` re-asserting"
                    ))
        }
        if m.networkManagerRunning {
            out.append(
                m.networkManagerIgnoresVIPDevice
                    ? .pass(
                        "manager.networkmanager", "NetworkManager leaves \(p.deviceName) alone",
                        evidence: "unmanaged-devices lists it")
                    : .warn(
                        "manager.networkmanager",
                        "NetworkManager is running and may manage \(p.deviceName): reconnecting it can flush the VIPs",
                        evidence: "NetworkManager running; \(p.deviceName) not in unmanaged-devices",
                        fix:
                            "printf '[keyfile]\\nunmanaged-devices=interface-name:\(p.deviceName)\\n' > /etc/NetworkManager/conf.d/rsagent.conf && nmcli general reload"
                    ))
        }
        return out
    }
}
