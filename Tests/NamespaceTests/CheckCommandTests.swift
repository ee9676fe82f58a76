import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct CheckCommandTests {
    func verdicts(_ r: Output) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for f in r.json["findings"] as? [[String: Any]] ?? [] {
            out[f["verdict"] as? String ?? "?", default: []].append("\(f["id"]!): \(f["summary"]!) | fix: \(f["fix"]!)")
        }
        return out
    }

    @Test func anAppliedProfilePassesAndAnUnappliedOneFailsWithFixes() throws {
        let ns = try Namespace()
        let path = try ns.shippedProfile("dr-lo")
        let before = try ns.rsagent("check", "-c", path, "--json")
        #expect(before.status == 1)
        let fails = verdicts(before)["fail"] ?? []
        #expect(fails.contains { $0.hasPrefix("vip.present") && $0.contains("fix: rsagent apply") })
        #expect(
            fails.contains {
                $0.hasPrefix("arp.ignore") && $0.contains("fix: sysctl -w net.ipv4.conf.veth0.arp_ignore=1")
            })
        #expect(try ns.rsagent("apply", "-c", path).status == 0)
        let after = try ns.rsagent("check", "-c", path, "--json")
        #expect(after.status == 0, "\(verdicts(after))")
        #expect(verdicts(after)["fail"] == nil)
        #expect((verdicts(after)["pass"] ?? []).contains { $0.hasPrefix("route.in") })
    }

    @Test func aServiceWithoutListenerWarnsAndAWildcardListenerPasses() throws {
        let ns = try Namespace()
        let path = try ns.shippedProfile("dr-lo")  // declares tcp/80 and tcp/443
        #expect(try ns.rsagent("apply", "-c", path).status == 0)
        let quiet = try ns.rsagent("check", "-c", path, "--json")
        #expect(quiet.status == 0)  // warnings do not fail
        #expect((verdicts(quiet)["warn"] ?? []).contains { $0.hasPrefix("service.tcp80") })
        // A real listener on the wildcard address, inside the namespace.
        let server = try spawn(
            Env.ipPath!,
            [
                "netns", "exec", ns.name, "python3", "-c",
                "import socket,time; s=socket.socket(); s.bind(('0.0.0.0', 80)); s.listen(); time.sleep(30)",
            ])
        defer { kill(server, SIGKILL); _ = wait(server) }
        #expect(
            eventually {
                (verdicts(try ns.rsagent("check", "-c", path, "--json"))["pass"] ?? []).contains {
                    $0.hasPrefix("service.tcp80")
                }
            })
        #expect(
            (verdicts(try ns.rsagent("check", "-c", path, "--json"))["warn"] ?? []).contains {
                $0.hasPrefix("service.tcp443")
            })
    }

    @Test func arpIgnoreZeroOnAllIsAFailureNamingTheInterface() throws {
        let ns = try Namespace()
        let path = try ns.profile("mode: dr\nvips: [192.0.2.100]\narp: { scope: all }\n")
        #expect(try ns.rsagent("apply", "-c", path).status == 0)
        #expect(try ns.rsagent("check", "-c", path).status == 0)
        try ns.setSysctl("all/arp_ignore", 0)
        let r = try ns.rsagent("check", "-c", path)
        #expect(r.status == 1)
        #expect(r.stdout.contains("[arp.ignore] veth0: arp_ignore is 0"), "\(r.stdout)")
        #expect(r.stdout.contains("fix:      sysctl -w net.ipv4.conf.veth0.arp_ignore=1"))
    }

    @Test func strictReversePathFilteringFailsAndThePrintedFixMakesItPass() throws {
        let ns = try Namespace()
        // Clients in 203.0.113.0/24 are routed by a second interface; the director's packets
        // arrive on veth0, which filters strictly.
        try ns.sh("link add veth2 type veth peer name veth3")
        try ns.sh("addr add 10.98.0.2/24 dev veth2")
        try ns.sh("link set veth2 up")
        try ns.sh("link set veth3 up")
        try ns.sh("route add 203.0.113.0/24 via 10.98.0.1 dev veth2")
        try ns.setSysctl("veth0/rp_filter", 1)
        let path = try ns.profile("mode: dr\nvips: [192.0.2.100]\ninterfaces: [veth0]\n")
        #expect(try ns.rsagent("apply", "-c", path).status == 0)
        let r = try ns.rsagent("check", "-c", path, "--client", "203.0.113.77", "--json")
        #expect(r.status == 1)
        let fail = (verdicts(r)["fail"] ?? []).first { $0.hasPrefix("route.in") }
        #expect(fail?.contains("reverse-path filtering") == true, "\(verdicts(r))")
        #expect(fail?.hasSuffix("fix: sysctl -w net.ipv4.conf.veth0.rp_filter=2") == true)
        try ns.setSysctl("veth0/rp_filter", 2)  // the printed fix
        #expect(try ns.rsagent("check", "-c", path, "--client", "203.0.113.77").status == 0)
    }
}
