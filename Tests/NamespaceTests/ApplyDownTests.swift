import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct ApplyDownTests {
    /// The issue's "done when", on the shipped dr-lo profile: apply converges, status shows it,
    /// a second apply changes nothing, down restores the namespace exactly.
    @Test func drLoRoundTrip() throws {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let profile = try ns.shippedProfile("dr-lo")

        let apply = try ns.rsagent("apply", "-c", profile, "--json")
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.json["result"] as? String == "converged")
        #expect(try ns.addresses(on: "lo").contains("192.0.2.100/32"))
        #expect(try ns.sysctls()["veth0/arp_ignore"] == 1)
        #expect(try ns.sysctls()["veth0/arp_announce"] == 2)

        let status = try ns.rsagent("status", "-c", profile, "--json")
        #expect(status.status == 0, "\(status.stdout)")
        let addrs = status.json["addresses"] as? [[String: Any]] ?? []
        #expect(addrs.map { "\($0["device"]!) \($0["address"]!)/\($0["prefix"]!)" } == ["lo 192.0.2.100/32"])
        #expect((status.json["profile"] as? [String: Any])?["converged"] as? Bool == true)

        let again = try ns.rsagent("apply", "-c", profile, "--json")
        #expect(again.status == 0)
        #expect(again.json["result"] as? String == "unchanged")
        #expect((again.json["actions"] as? [Any])?.isEmpty == true)

        let down = try ns.rsagent("down", "-c", profile)
        #expect(down.status == 0, "\(down.stderr)")
        #expect(try ns.snapshot() == before)
        #expect(!FileManager.default.fileExists(atPath: ns.stateDir + "/state.json"))
    }

    @Test func ipv4AndIPv6ApplyReapplyDown() throws {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let profile = try ns.shippedProfile("multi-vip")
        #expect(try ns.rsagent("apply", "-c", profile).status == 0)
        let lo = try ns.addresses(on: "lo")
        for v in ["192.0.2.100/32", "192.0.2.101/32", "198.51.100.20/32", "2001:db8::100/128", "2001:db8::101/128"] {
            #expect(lo.contains(v), "\(v) missing from \(lo)")
        }
        // IPv6 VIPs are usable at once: added nodad, never tentative.
        #expect(!(try ns.sh("addr show dev lo")).contains("tentative"))
        #expect(try ns.rsagent("apply", "-c", profile, "--json").json["result"] as? String == "unchanged")
        // Drop one VIP from the profile: the next apply removes exactly that one.
        let smaller = try ns.profile("mode: dr\nvips: [192.0.2.100, 192.0.2.101, 198.51.100.20, '2001:db8::100']\n")
        let r = try ns.rsagent("apply", "-c", smaller, "--json")
        let kinds = (r.json["actions"] as? [[String: Any]] ?? []).map { "\($0["kind"]!) \($0["summary"]!)" }
        #expect(kinds == ["remove_address remove 2001:db8::101/128 from lo"])
        #expect(try ns.rsagent("down", "-c", smaller).status == 0)
        #expect(try ns.snapshot() == before)
    }

    @Test func foreignAddressesAreNeverTouched() throws {
        let ns = try Namespace()
        try ns.sh("addr add 203.0.113.7/32 dev lo")
        try ns.sh("addr add 2001:db8:ffff::7/128 dev lo nodad")
        try ns.sh("addr add 10.99.0.77/24 dev veth0")
        let before = try ns.snapshot()
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100, '2001:db8::100']\n")
        #expect(try ns.rsagent("apply", "-c", profile).status == 0)
        // A profile that no longer lists anything we own still leaves foreign ones alone.
        let other = try ns.profile("mode: dr\nvips: [192.0.2.200]\n")
        #expect(try ns.rsagent("apply", "-c", other).status == 0)
        let lo = try ns.addresses(on: "lo")
        #expect(lo.contains("203.0.113.7/32") && lo.contains("2001:db8:ffff::7/128"))
        #expect(!lo.contains("192.0.2.100/32") && lo.contains("192.0.2.200/32"))
        #expect(try ns.rsagent("down", "-c", other).status == 0)
        #expect(try ns.snapshot() == before)
    }

    @Test func foreignVIPIsReportedNotAdoptedUnlessAsked() throws {
        let ns = try Namespace()
        try ns.sh("addr add 192.0.2.100/32 dev lo")
        let before = try ns.snapshot()
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100, 192.0.2.101]\n")
        let r = try ns.rsagent("apply", "-c", profile)
        #expect(r.status == 2)
        #expect(r.stderr.contains("192.0.2.100/32 is already on lo but was not added by rsagent"))
        #expect(r.stderr.contains("--adopt"))
        #expect(try ns.snapshot() == before)

        #expect(try ns.rsagent("apply", "-c", profile, "--adopt").status == 0)
        #expect(try ns.rsagent("apply", "-c", profile, "--json").json["result"] as? String == "unchanged")
        // Adopted means owned: down removes it too.
        #expect(try ns.rsagent("down", "-c", profile).status == 0)
        #expect(!(try ns.addresses(on: "lo")).contains("192.0.2.100/32"))
    }

    @Test func vipOnTheFacingInterfaceIsAConflict() throws {
        let ns = try Namespace()
        try ns.sh("addr add 192.0.2.100/24 dev veth0")
        let before = try ns.snapshot()
        let r = try ns.rsagent("apply", "-c", try ns.profile("mode: dr\nvips: [192.0.2.100]\n"), "--adopt")
        #expect(r.status == 2)
        // A /24 on the facing interface is this host's own address: said so, never "delete it".
        #expect(r.stderr.contains("VIP 192.0.2.100 is this host's own address (192.0.2.100/24 on veth0)"))
        #expect(!r.stderr.contains("ip addr del"))
        #expect(try ns.snapshot() == before)
    }

    @Test func sysctlsAreRestoredExactlyUnlessChangedSince() throws {
        let ns = try Namespace()
        try ns.setSysctl("veth0/arp_announce", 1)
        try ns.setSysctl("all/rp_filter", 1)
        try ns.setSysctl("veth0/rp_filter", 1)
        let before = try ns.snapshot()
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100]\nrp_filter: loose\n")
        #expect(try ns.rsagent("apply", "-c", profile).status == 0)
        let s = try ns.sysctls()
        #expect(s["veth0/arp_ignore"] == 1 && s["veth0/arp_announce"] == 2 && s["veth0/rp_filter"] == 2)
        #expect(try ns.rsagent("down", "-c", profile).status == 0)
        #expect(try ns.snapshot() == before)

        // Someone changes a value after rsagent: down warns and leaves it.
        #expect(try ns.rsagent("apply", "-c", profile).status == 0)
        try ns.setSysctl("veth0/arp_ignore", 3)
        let down = try ns.rsagent("down", "-c", profile)
        #expect(down.status == 0)
        #expect(down.stderr.contains("net.ipv4.conf.veth0.arp_ignore was changed by someone else"))
        #expect(try ns.sysctls()["veth0/arp_ignore"] == 3)
        #expect(try ns.sysctls()["veth0/arp_announce"] == 1)
    }

    @Test func dryRunChangesNothing() throws {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let r = try ns.rsagent("apply", "-c", try ns.shippedProfile("multi-vip"), "--dry-run", "--json")
        #expect(r.status == 0)
        #expect(r.json["result"] as? String == "planned")
        #expect((r.json["actions"] as? [Any])?.count == 7)
        #expect(try ns.snapshot() == before)
        #expect(!FileManager.default.fileExists(atPath: ns.stateDir))
    }

    /// Whether this kernel can make a device of `kind`: its module is loaded or can be loaded
    /// (`modprobe -n`). Known before the test runs, so the test expects one outcome, not either.
    func kernelHas(module: String) -> Bool {
        if FileManager.default.fileExists(atPath: "/sys/module/\(module)") { return true }
        let modprobe = ["/usr/sbin/modprobe", "/sbin/modprobe"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        return modprobe.map { (try? execute($0, ["-n", "-q", module]))?.status == 0 } ?? false
    }

    @Test func aDummyDeviceIsMadeAndRemovedOrRefusedWithoutChange() throws {
        // This machine's kernel has no dummy module (docs/design.md, "This machine's kernel");
        // the VM suite (tests/vm/guest.sh) runs the same path on a kernel that has it.
        let ns = try Namespace()
        let before = try ns.snapshot()
        let r = try ns.rsagent("apply", "-c", try ns.shippedProfile("dr-dummy"))
        if kernelHas(module: "dummy") {
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try ns.links().contains("lvs0 dummy up"))
            #expect(try ns.rsagent("down", "-c", try ns.shippedProfile("dr-dummy")).status == 0)
        } else {
            #expect(r.status == 1)
            #expect(r.stderr.contains("kernel lacks dummy device support (modprobe dummy)"))
            #expect(r.stdout.contains("the host is as it was"))
        }
        #expect(try ns.snapshot() == before)
    }

    @Test func tunnelModeConvergesAndIsUndoneOrIsRefusedWithoutChange() throws {
        // As above for ipip; tests/vm/guest.sh runs the converging path under Debian's kernel.
        let ns = try Namespace()
        let before = try ns.snapshot()
        let r = try ns.rsagent("apply", "-c", try ns.shippedProfile("tun"))
        if kernelHas(module: "ipip") {
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try ns.addresses(on: "tunl0").contains("192.0.2.110/32"))
            #expect(try ns.rsagent("down", "-c", try ns.shippedProfile("tun")).status == 0)
            // tunl0 stays once ipip is loaded (the kernel's own device), set down again: the
            // snapshot of everything else is as before.
            #expect(try ns.snapshot().withoutLink("tunl0") == before.withoutLink("tunl0"))
        } else {
            #expect(r.status == 1)
            #expect(r.stderr.contains("kernel lacks ipip tunnel support for tunl0 (modprobe ipip)"), "\(r.stderr)")
            #expect(r.stdout.contains("the host is as it was"))
            #expect(try ns.snapshot() == before)
        }
    }

    /// GUE (FOU port + tunl0), IPv6 tunnels (ip6tnl0, ip6gre0) and rsagent's own checksummed
    /// GRE tunnels (rsgre0, rsip6gre0): where this kernel lacks the
    /// modules (this machine has none of them), apply names the module and changes nothing;
    /// where it has them, apply converges and down undoes it. tests/vm/encaps.sh runs every
    /// encapsulation end to end under Debian's kernel with a real IPVS director.
    @Test(arguments: [
        ("tun-gue", ["ipip", "fou"], "kernel lacks ipip tunnel support for tunl0 (modprobe ipip)"),
        ("tun-ipv6", ["ip6_gre", "ip6_tunnel"], "kernel lacks ip6gre tunnel support for ip6gre0 (modprobe ip6_gre)"),
        ("tun-gre-csum", ["ip_gre", "ip6_gre"], "kernel lacks gre tunnel support (modprobe ip_gre)"),
    ])
    func otherEncapsulationsConvergeOrAreRefusedNamingTheModule(profile: String, modules: [String], message: String)
        throws
    {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let path = try ns.shippedProfile(profile)
        let r = try ns.rsagent("apply", "-c", path)
        if modules.allSatisfy({ kernelHas(module: $0) }) {
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try ns.rsagent("down", "-c", path).status == 0)
        } else {
            #expect(r.status == 1)
            // The first device's module is named when it is the one missing (as on this machine).
            #expect(r.stderr.contains(kernelHas(module: modules[0]) ? "kernel lacks" : message), "\(r.stderr)")
            #expect(r.stdout.contains("the host is as it was"))
            #expect(try ns.snapshot() == before)
        }
    }

    @Test func invalidProfileExitsTwoAndTouchesNothing() throws {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100/24, 192.0.2.300]\narp: { ignore: 0 }\nbogus: 1\n")
        let r = try ns.rsagent("apply", "-c", profile)
        #expect(r.status == 2)
        let lines = r.stderr.split(separator: "\n").filter { $0.contains(".yaml:") }
        #expect(lines.count == 4, "\(r.stderr)")
        #expect(r.stderr.contains("nothing was changed"))
        #expect(try ns.snapshot() == before)
    }

    @Test func statusReportsDriftWithExitThree() throws {
        let ns = try Namespace()
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100, 192.0.2.101]\n")
        #expect(try ns.rsagent("apply", "-c", profile).status == 0)
        try ns.sh("addr del 192.0.2.101/32 dev lo")
        let s = try ns.rsagent("status", "-c", profile)
        #expect(s.status == 3)
        #expect(s.stdout.contains("drift"))
        #expect(s.stdout.contains("add 192.0.2.101/32 to lo"))
        #expect(try ns.rsagent("apply", "-c", profile).status == 0)
        #expect(try ns.rsagent("status", "-c", profile).status == 0)
        _ = try ns.rsagent("down", "-c", profile)
    }

    @Test func freshNamespaceWithLoopbackDownIsHandled() throws {
        // lo starts down in a new namespace: rsagent sets it up, and down sets it down again.
        let ns = try Namespace(loUp: false)
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100]\n")
        let r = try ns.rsagent("apply", "-c", profile, "--json")
        #expect((r.json["actions"] as? [[String: Any]])?.first?["kind"] as? String == "set_link_up")
        #expect(try ns.links().contains("lo - up"))
        #expect(try ns.rsagent("down", "-c", profile).status == 0)
        #expect(try ns.links().contains("lo - down"))
    }

    @Test func badNamespaceNameIsOneSentence() throws {
        let r = try execute(Env.binary, ["status", "--netns", "rsat-does-not-exist-\(getpid())"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("entering network namespace"))
        #expect(r.stderr.contains("ip netns add"))
    }
}

@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct KernelRefusalTests {
    @Test func ipv6DisabledOnLoRollsBackAndSaysWhy() throws {
        let ns = try Namespace()
        let r0 = try execute(
            Env.ipPath!, ["netns", "exec", ns.name, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6"])
        #expect(r0.status == 0)
        let before = try ns.snapshot()
        let r = try ns.rsagent("apply", "-c", try ns.shippedProfile("multi-vip"))
        #expect(r.status == 1)
        #expect(r.stderr.contains("adding 2001:db8::100/128 to lo: IPv6 is disabled on lo"))
        #expect(r.stdout.contains("the host is as it was"))
        #expect(try ns.snapshot() == before)
    }
}
