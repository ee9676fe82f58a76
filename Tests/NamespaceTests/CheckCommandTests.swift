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

    /// A second interface, veth2, that the route back to 203.0.113.0/24 (the test clients) uses.
    func routeClientsElsewhere(_ ns: Namespace) throws {
        try ns.sh("link add veth2 type veth peer name veth3")
        try ns.sh("addr add 10.98.0.2/24 dev veth2")
        try ns.sh("link set veth2 up")
        try ns.sh("link set veth3 up")
        try ns.sh("route add 203.0.113.0/24 via 10.98.0.1 dev veth2")
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

    /// The issue's "done when": a namespace broken several ways; check names every fault with
    /// its fix; pasting the fixes makes it pass.
    @Test func everyFaultIsNamedAndThePastedFixesMakeItPass() throws {
        let ns = try Namespace()
        try routeClientsElsewhere(ns)
        let path = try ns.profile("mode: dr\nvips: [192.0.2.100, 192.0.2.101]\ninterfaces: [veth0]\n")
        #expect(try ns.rsagent("apply", "-c", path).status == 0)
        // The faults: ARP answered on the facing interface, strict rp_filter there, a VIP gone
        // from lo, and a VIP also put on an ARPing interface.
        try ns.setSysctl("veth0/arp_ignore", 0)
        try ns.setSysctl("veth0/rp_filter", 1)
        try ns.sh("addr del 192.0.2.101/32 dev lo")
        try ns.sh("addr add 192.0.2.100/32 dev veth2")
        let broken = try ns.rsagent("check", "-c", path, "--client", "203.0.113.77", "--json")
        #expect(broken.status == 1)
        let findings = broken.json["findings"] as? [[String: Any]] ?? []
        let failed = findings.filter { $0["verdict"] as? String == "fail" }
        let ids = Set(failed.compactMap { $0["id"] as? String })
        #expect(ids.isSuperset(of: ["arp.ignore", "route.in", "vip.present", "vip.elsewhere"]), "\(ids)")
        // The hand-made VIP on veth2 is not rsagent's: its fix says to remove it, but never as a
        // command to paste (a pasted `ip addr del` of a foreign address can be the host's own).
        let handMade = failed.first { $0["id"] as? String == "vip.elsewhere" }?["fix"] as? String ?? ""
        #expect(handMade.contains("remove it from veth2 yourself") && !handMade.contains("addr del"), "\(handMade)")
        try ns.sh("addr del 192.0.2.100/32 dev veth2")  // the operator's own judgement
        let fixes = Array(Set(failed.compactMap { $0["fix"] as? String }.filter { !$0.isEmpty && $0 != handMade }))
            .sorted()
        #expect(fixes.contains("rsagent apply -c \(path)"))
        for fix in fixes {
            // Paste each fix into the realserver's shell (rsagent itself runs as the built binary).
            let command = fix.replacingOccurrences(of: "rsagent ", with: "\(Env.binary) ")
            let r = try execute(Env.ipPath!, ["netns", "exec", ns.name, "sh", "-c", command])
            #expect(r.status == 0, "\(fix): \(r.stderr)")
        }
        let fixed = try ns.rsagent("check", "-c", path, "--client", "203.0.113.77")
        #expect(fixed.status == 0, "\(fixed.stdout)")
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
        try routeClientsElsewhere(ns)
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

/// A LAN: a router namespace with a bridge, and a realserver namespace attached to it by veth.
final class BridgedLAN {
    let router: String
    let server: Namespace

    init() throws {
        server = try Namespace()
        router = server.name + "-r"
        try server.ip("netns", "add", router)
        try run(["-n", router, "link", "add", "br0", "type", "bridge"])
        try run(["-n", router, "link", "set", "br0", "up"])
        try run(["-n", router, "addr", "add", "10.88.0.1/24", "dev", "br0"])
        try run(["link", "add", "lan0", "netns", server.name, "type", "veth", "peer", "name", "port0", "netns", router])
        try run(["-n", router, "link", "set", "port0", "master", "br0"])
        try run(["-n", router, "link", "set", "port0", "up"])
        try server.sh("addr add 10.88.0.2/24 dev lan0")
        try server.sh("link set lan0 up")
        try server.sh("route replace default via 10.88.0.1 dev lan0")
    }

    deinit { _ = try? execute(Env.ipPath!, ["netns", "del", router]) }

    func run(_ args: [String]) throws {
        let r = try execute(Env.ipPath!, args)
        if r.status != 0 { throw HarnessError("ip \(args.joined(separator: " ")): \(r.stderr)") }
    }

    /// True when someone answers ARP for `ip` on the LAN (arping from the router).
    func arpAnswered(_ ip: String) throws -> Bool {
        try execute(Env.ipPath!, ["netns", "exec", router, Env.arping!, "-c", "2", "-w", "3", "-I", "br0", ip]).status
            == 0
    }
}

extension Env {
    static let arping = ["/usr/sbin/arping", "/usr/bin/arping"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
}

@Suite(.enabled(if: Env.canRun && Env.arping != nil, "needs root, iproute2, arping and a built rsagent"))
struct ARPProofTests {
    /// What `check` says about ARP is what the wire shows: with the check passing nobody but the
    /// director would answer for the VIP; with it failing, the realserver answers.
    @Test func arpingAgreesWithCheck() throws {
        let lan = try BridgedLAN()
        let path = try lan.server.profile("mode: dr\nvips: [10.88.0.100]\ninterfaces: [lan0]\n")
        #expect(try lan.server.rsagent("apply", "-c", path).status == 0)
        let good = try lan.server.rsagent("check", "-c", path, "--client", "10.88.0.1")
        #expect(good.status == 0, "\(good.stdout)")
        #expect(try !lan.arpAnswered("10.88.0.100"))
        #expect(try lan.arpAnswered("10.88.0.2"))  // the probe itself works: the RIP answers

        try lan.server.setSysctl("lan0/arp_ignore", 0)
        let bad = try lan.server.rsagent("check", "-c", path, "--client", "10.88.0.1")
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("[arp.ignore] lan0: arp_ignore is 0"))
        #expect(try lan.arpAnswered("10.88.0.100"))
    }
}
