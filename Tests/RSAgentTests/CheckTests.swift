import Netlink
import Testing

@testable import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct CheckTests {
    let dr = profile("mode: dr\nvips: [192.0.2.100]\n")
    let client = IPAddress("203.0.113.7")!
    let vip = IPAddress("192.0.2.100")!

    func observe(_ host: HostState, routes: [RouteQuery: RouteAnswer] = [:]) -> CheckObservation {
        CheckObservation(host: host, interfaces: ["eth0"], clients: [client], routes: routes)
    }
    func finding(_ fs: [Finding], _ id: String) -> Finding? { fs.first { $0.id == id } }
    var inbound: RouteQuery { RouteQuery(to: vip, from: client, iif: .init(rawValue: 2)) }
    var reply: RouteQuery { RouteQuery(to: client, from: vip) }

    @Test func arpIsJudgedOnTheEffectiveValue() {
        let bad = Checks.run(dr, observe(sampleHost(extra: [owned("192.0.2.100")])))
        let ignore = finding(bad, "arp.ignore")
        #expect(ignore?.verdict == .fail)
        #expect(ignore?.summary.contains("eth0: arp_ignore is 0") == true)
        #expect(ignore?.fix == "sysctl -w net.ipv4.conf.eth0.arp_ignore=1")
        let viaAll = Checks.run(
            dr,
            observe(
                sampleHost(
                    extra: [owned("192.0.2.100")],
                    sysctls: [SysctlKey("all", .arpIgnore): 1, SysctlKey("all", .arpAnnounce): 2])))
        #expect(finding(viaAll, "arp.ignore")?.verdict == .pass)
        #expect(finding(viaAll, "arp.announce")?.verdict == .pass)
        // IPv6-only: no ARP problem, no ARP findings.
        let v6 = profile("mode: dr\nvips: ['2001:db8::1']\n")
        #expect(Checks.run(v6, observe(sampleHost())).allSatisfy { !$0.id.hasPrefix("arp.") })
    }

    @Test func vipPlacement() {
        #expect(finding(Checks.run(dr, observe(sampleHost())), "vip.present")?.verdict == .fail)
        let elsewhere = Checks.run(
            dr, observe(sampleHost(extra: [owned("192.0.2.100"), foreign("192.0.2.100", on: 2, prefix: 24)])))
        #expect(finding(elsewhere, "vip.present")?.verdict == .pass)
        // A VIP that is this host's own address (a /24 on eth0): the fix is the profile; a fix
        // that deleted the address would cut the host off (issue 13, point 6).
        #expect(finding(elsewhere, "vip.own_address")?.verdict == .fail)
        #expect(finding(elsewhere, "vip.own_address")?.fix == "correct the VIP in the profile (-c PROFILE)")
        // Someone's hand-made /32 on eth0: named, never deleted by a pasted command.
        let handMade = Checks.run(
            dr, observe(sampleHost(extra: [owned("192.0.2.100"), foreign("192.0.2.100", on: 2, prefix: 32)])))
        #expect(finding(handMade, "vip.elsewhere")?.verdict == .fail)
        #expect(finding(handMade, "vip.elsewhere")?.fix.contains("ip addr del") == false)
        // No check ever suggests deleting an address or downing an interface.
        for f in Checks.run(dr, observe(sampleHost(extra: [foreign("192.0.2.100", on: 2, prefix: 24)]))) {
            #expect(!f.fix.contains("addr del") && !f.fix.contains(" down"), "\(f.id): \(f.fix)")
        }
    }

    @Test(arguments: [EINVAL, EXDEV])
    func reversePathFilteringIsNamedWithItsSysctl(_ e: Int32) {
        let host = sampleHost(extra: [owned("192.0.2.100")], sysctls: [SysctlKey("eth0", .rpFilter): 1])
        let f = finding(
            Checks.run(dr, observe(host, routes: [inbound: .refused(errno: e, text: "Invalid argument")])), "route.in")
        #expect(f?.verdict == .fail)
        #expect(f?.summary.contains("reverse-path filtering") == true)
        #expect(f?.fix == "sysctl -w net.ipv4.conf.eth0.rp_filter=2")
        #expect(f?.evidence.contains("rp_filter effective 1") == true)
    }

    @Test func inboundAndReplyRoutes() {
        let host = sampleHost(extra: [owned("192.0.2.100")])
        let lo = RouteLookup(kind: .local, oif: .init(rawValue: 1), gateway: nil, preferredSource: nil, table: 254)
        let out = RouteLookup(
            kind: .unicast, oif: .init(rawValue: 2), gateway: IPAddress("10.0.0.1"), preferredSource: nil, table: 254)
        let good = Checks.run(dr, observe(host, routes: [inbound: .route(lo), reply: .route(out)]))
        #expect(good.allSatisfy { $0.verdict == .pass || $0.id.hasPrefix("arp.") })
        #expect(finding(good, "route.reply")?.summary.contains("leave by eth0 via 10.0.0.1") == true)
        let loopedBack = RouteLookup(
            kind: .unicast, oif: .init(rawValue: 1), gateway: nil, preferredSource: nil, table: 254)
        #expect(
            finding(Checks.run(dr, observe(host, routes: [reply: .route(loopedBack)])), "route.reply")?.verdict == .fail
        )
        let notLocal = Checks.run(
            dr, observe(sampleHost(), routes: [inbound: .refused(errno: EHOSTUNREACH, text: "No route to host")]))
        #expect(finding(notLocal, "route.in")?.summary.contains("not a local address") == true)
    }

    @Test func tunnelChecks() {
        let tun = profile("mode: tun\nvips: [192.0.2.110]\n")
        #expect(finding(Checks.run(tun, observe(sampleHost())), "tunnel.present")?.verdict == .fail)
        var host = sampleHost()
        host.links.append(Link(index: .init(rawValue: 9), name: "tunl0", kind: "ipip", isUp: false, isNoARP: true))
        host.sysctls[SysctlKey("tunl0", .rpFilter)] = 1
        let f = Checks.run(tun, observe(host))
        #expect(finding(f, "tunnel.up")?.fix == "rsagent apply -c PROFILE (or ip link set tunl0 up)")
        #expect(finding(f, "rpfilter.tunl0")?.verdict == .warn)
        #expect(finding(f, "rpfilter.tunl0")?.fix == "sysctl -w net.ipv4.conf.tunl0.rp_filter=2")
    }

    /// GUE with the VIPs on lo: tunl0 holds no address, so any reverse-path filtering there
    /// drops everything (loose too), and the FOU port must be there.
    @Test func gueChecksTheDecapDeviceAndTheFOUPort() {
        let gue = profile("mode: tun\ndevice: lo\ntunnel: { type: gue, port: 6080 }\nvips: [192.0.2.110]\n")
        var host = sampleHost()
        host.links.append(Link(index: .init(rawValue: 9), name: "tunl0", kind: "ipip", isUp: true, isNoARP: true))
        host.sysctls[SysctlKey("tunl0", .rpFilter)] = 2
        var f = Checks.run(gue, observe(host))
        #expect(finding(f, "tunnel.up")?.verdict == .pass)
        #expect(finding(f, "rpfilter.tunl0")?.verdict == .fail)
        #expect(finding(f, "rpfilter.tunl0")?.summary.contains("loose mode included") == true)
        #expect(finding(f, "tunnel.fou")?.verdict == .fail)
        #expect(finding(f, "tunnel.fou")?.fix == "rsagent apply -c PROFILE (or ip fou add port 6080 gue)")
        #expect(finding(f, "mtu.tunnel")?.evidence.contains("gue over IPv4 overhead 32") == true)
        host.sysctls[SysctlKey("tunl0", .rpFilter)] = 0
        host.sysctls[SysctlKey("all", .rpFilter)] = 0
        host.fouPorts = [FOUPort(port: 6080, family: .ipv4)]
        f = Checks.run(gue, observe(host))
        #expect(finding(f, "rpfilter.tunl0")?.verdict == .pass)
        #expect(finding(f, "tunnel.fou")?.verdict == .pass)
    }

    /// IPv4 and IPv6 VIPs over IPv6 (ipip): ip6tnl0 must be in mode any, and while it has taken
    /// in nothing the outer-source trap is named.
    @Test func ip6tnlModeAndTheOuterSourceTrap() {
        let p = profile("mode: tun\ndevice: lo\ntunnel: { outer: [ipv6] }\nvips: [192.0.2.110, '2001:db8::110']\n")
        var host = sampleHost()
        var t = Link(index: .init(rawValue: 9), name: "ip6tnl0", kind: "ip6tnl", isUp: true, isNoARP: true)
        t.tunnel = TunnelParameters(proto: DecapDevice.ip6ip6Mode)
        host.links.append(t)
        var f = Checks.run(p, observe(host))
        #expect(finding(f, "tunnel.mode")?.verdict == .fail)
        #expect(finding(f, "tunnel.mode")?.fix == "rsagent apply -c PROFILE (or ip -6 tunnel change ip6tnl0 mode any)")
        #expect(finding(f, "tunnel.source")?.verdict == .warn)
        #expect(
            finding(f, "tunnel.source")?.fix.contains("ip -6 addr change 2001:db8::110/128 dev DEV preferred_lft 0")
                == true)
        host.links[2].tunnel = TunnelParameters(proto: DecapDevice.anyMode, received: 12)
        f = Checks.run(p, observe(host))
        #expect(finding(f, "tunnel.mode")?.verdict == .pass)
        #expect(finding(f, "tunnel.source")?.verdict == .pass)
        #expect(finding(f, "tunnel.source")?.evidence == "ip6tnl0 rx_packets 12")
        // Only IPv4 VIPs: the director's own address is the source; nothing to warn about.
        let v4 = profile("mode: tun\ndevice: lo\ntunnel: { outer: [ipv6] }\nvips: [192.0.2.110]\n")
        #expect(finding(Checks.run(v4, observe(host)), "tunnel.source") == nil)
    }

    /// `csum: true`: rsagent's own GRE tunnel must be bound to the facing interface and take
    /// only checksummed packets.
    @Test func ownGRETunnelSettingsAreJudged() {
        let p = profile("mode: tun\ndevice: lo\ntunnel: { type: gre, csum: true }\nvips: [192.0.2.110]\n")
        var host = sampleHost()
        var t = Link(index: .init(rawValue: 9), name: "rsgre0", kind: "gre", isUp: true, isNoARP: true)
        t.tunnel = TunnelParameters(link: 2, inputChecksum: true)
        host.links.append(t)
        var f = Checks.run(p, observe(host))
        #expect(finding(f, "tunnel.settings")?.verdict == .pass)
        #expect(finding(f, "tunnel.settings")?.summary == "rsgre0 takes checksummed GRE arriving on eth0")
        #expect(finding(f, "mtu.tunnel")?.evidence.contains("gre over IPv4 overhead 28") == true)
        host.links[2].tunnel?.inputChecksum = false
        f = Checks.run(p, observe(host))
        #expect(finding(f, "tunnel.settings")?.verdict == .fail)
        #expect(finding(f, "tunnel.settings")?.evidence == "ip -d link show rsgre0: dev eth0 (no icsum)")
    }

    @Test func queriesArriveWhereTheDirectorSends() {
        var host = sampleHost()
        host.links.append(Link(index: .init(rawValue: 9), name: "tunl0", kind: "ipip"))
        let tun = profile("mode: tun\nvips: [192.0.2.110]\n")
        let q = Checks.queries(tun, host: host, interfaces: ["eth0"], clients: [client, IPAddress("2001:db8::9")!])
        #expect(q.contains(RouteQuery(to: IPAddress("192.0.2.110")!, from: client, iif: .init(rawValue: 9))))
        #expect(q.count == 2)  // inbound on tunl0 and the reply; the IPv6 client has no IPv4 VIP to test
    }

    @Test func listenersOnTheVIPOrAWildcardCount() {
        let web = profile("mode: dr\nvips:\n  - address: 192.0.2.100\n    services: [tcp/80, udp/53]\n")
        func verdicts(_ ls: [ListeningSocket]) -> [String: Finding.Verdict] {
            var o = observe(sampleHost(extra: [owned("192.0.2.100")]))
            o.listeners = ls
            return Dictionary(
                uniqueKeysWithValues: Checks.run(web, o).filter { $0.id.hasPrefix("service.") }.map {
                    ($0.id, $0.verdict)
                })
        }
        #expect(verdicts([]) == ["service.tcp80": .warn, "service.udp53": .warn])
        let wildcard4 = ListeningSocket(proto: .tcp, address: IPAddress("0.0.0.0")!, port: 80)
        let wildcard6 = ListeningSocket(proto: .udp, address: IPAddress("::")!, port: 53)
        #expect(verdicts([wildcard4, wildcard6]) == ["service.tcp80": .pass, "service.udp53": .pass])
        let onVIP = ListeningSocket(proto: .tcp, address: vip, port: 80)
        let onRIP = ListeningSocket(proto: .tcp, address: IPAddress("10.0.0.5")!, port: 80)
        #expect(verdicts([onVIP])["service.tcp80"] == .pass)
        #expect(verdicts([onRIP])["service.tcp80"] == .warn)
        #expect(verdicts([ListeningSocket(proto: .udp, address: vip, port: 80)])["service.tcp80"] == .warn)
        var unavailable = observe(sampleHost(extra: [owned("192.0.2.100")]))
        unavailable.listenersUnavailable = "ss -ltn -4: No such file or directory"
        let f = Checks.run(web, unavailable).first { $0.id == "service.tcp80" }
        #expect(f?.verdict == .warn && f?.summary.hasPrefix("cannot tell") == true)
        #expect(f?.fix == "modprobe inet_diag tcp_diag udp_diag")
    }

    @Test func tunModeWarnsAboutTheTunnelOverhead() {
        let tun = profile("mode: tun\nvips: [192.0.2.110]\n")
        let f = finding(Checks.run(tun, observe(sampleHost())), "mtu.tunnel")
        #expect(f?.verdict == .warn)
        let fix = f?.fix ?? ""
        #expect(fix.contains("`tunnel: { mss: auto }`") && fix.contains("`mss: 1440`"), "\(fix)")
    }

    @Test func networkManagersThatPruneForeignAddressesWarn() {
        #expect(Checks.managers(dr, ManagerObservation()).isEmpty)
        var m = ManagerObservation()
        m.networkdRunning = true
        m.networkManagerRunning = true
        let warned = Checks.managers(dr, m)
        #expect(warned.map(\.verdict) == [.warn, .warn])
        #expect(warned[0].fix.contains("KeepConfiguration=static"))
        #expect(warned[1].fix.contains("unmanaged-devices=interface-name:lo"))
        m.networkdKeepsConfiguration = true
        m.networkManagerIgnoresVIPDevice = true
        #expect(Checks.managers(dr, m).map(\.verdict) == [.pass, .pass])
    }

    @Test func failuresComeFirst() {
        let fs = Checks.run(
            dr,
            observe(
                sampleHost(
                    extra: [owned("192.0.2.100")],
                    sysctls: [SysctlKey("eth0", .arpIgnore): 1])))
        #expect(fs.first?.verdict == .fail)
        #expect(fs.last?.verdict == .pass)
    }
}
