import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A client, an ECMP router and two realservers, each in a namespace of its own:
///
///     client 10.98.0.2 ── 10.98.0.1 router 10.97.1.1 ── 10.97.1.2 rs1 (VIP on lo)
///                                          10.97.2.1 ── 10.97.2.2 rs2 (VIP on lo)
///
/// The router sends the VIP to both RIPs (`nexthop via RIP1 nexthop via RIP2`) hashing on the
/// layer-4 ports (`fib_multipath_hash_policy=1`): a stand-in for a director that, like LVS-DR,
/// delivers the VIP unchanged to a realserver chosen per connection.
final class ECMPLab {
    let client, router, rs1, rs2: String
    let stateDir: String
    private static let counter = Counter()

    init() throws {
        let base = "rsae-\(getpid())-\(Self.counter.next())"
        (client, router, rs1, rs2) = (base + "-c", base + "-r", base + "-1", base + "-2")
        stateDir = NSTemporaryDirectory() + "rsagent-\(base)"
        for n in [client, router, rs1, rs2] {
            try ip("netns", "add", n)
            try ip("-n", n, "link", "set", "lo", "up")
        }
        try ip("link", "add", "c0", "netns", client, "type", "veth", "peer", "name", "r0", "netns", router)
        try ip("link", "add", "eth0", "netns", rs1, "type", "veth", "peer", "name", "r1", "netns", router)
        try ip("link", "add", "eth0", "netns", rs2, "type", "veth", "peer", "name", "r2", "netns", router)
        for (ns, dev, addr, gw) in [
            (client, "c0", "10.98.0.2/24", "10.98.0.1"), (rs1, "eth0", "10.97.1.2/24", "10.97.1.1"),
            (rs2, "eth0", "10.97.2.2/24", "10.97.2.1"),
        ] {
            try ip("-n", ns, "addr", "add", addr, "dev", dev)
            try ip("-n", ns, "link", "set", dev, "up")
            try ip("-n", ns, "route", "add", "default", "via", gw)
        }
        for (dev, addr) in [("r0", "10.98.0.1/24"), ("r1", "10.97.1.1/24"), ("r2", "10.97.2.1/24")] {
            try ip("-n", router, "addr", "add", addr, "dev", dev)
            try ip("-n", router, "link", "set", dev, "up")
        }
        try execute(
            Env.ipPath!,
            [
                "netns", "exec", router, "/bin/sh", "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv4/fib_multipath_hash_policy",
            ])
        try ip(
            "-n", router, "route", "add", "192.0.2.100/32", "nexthop", "via", "10.97.1.2", "dev", "r1", "nexthop",
            "via", "10.97.2.2", "dev", "r2")
    }

    deinit {
        for n in [client, router, rs1, rs2] { _ = try? execute(Env.ipPath!, ["netns", "del", n]) }
        for n in ["1", "2"] { try? FileManager.default.removeItem(atPath: stateDir + "-" + n) }
    }

    @discardableResult
    func ip(_ args: String...) throws -> String {
        let r = try execute(Env.ipPath!, args)
        if r.status != 0 { throw HarnessError("ip \(args.joined(separator: " ")): \(r.stderr)") }
        return r.stdout
    }

    /// `rsagent run` on realserver `n` (1 or 2) with the VIP on lo and the test service.
    func agent(_ n: Int) throws -> Daemon {
        let dir = stateDir + "-\(n)"
        let profile = dir + ".yaml"
        try """
        mode: dr
        vips: [192.0.2.100]
        test_service: { port: 31337, http_port: 31380 }
        state_dir: \(dir)
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        return try Daemon(netns: n == 1 ? rs1 : rs2, logBase: dir, profile: profile)
    }

    func probe(_ args: String...) throws -> Output {
        try execute(Env.binary, ["probe", "--netns", client] + args)
    }
}

@Suite(.enabled(if: Env.canRun, Env.skipReason), .serialized)
struct ProbeTests {
    @Test func probeThroughAnECMPRouterSeesBothRealserversAnsweringForTheVIP() throws {
        let lab = try ECMPLab()
        let agents = [try lab.agent(1), try lab.agent(2)]
        for port in ["31337", "31380"] {
            let r = try lab.probe("192.0.2.100:\(port)", "-n", "40", "--json")
            #expect(r.status == 0, "\(r.stderr)")
            let o = r.json
            #expect(o["answered"] as? Int == 40, "\(r.stdout)")
            let servers = o["realservers"] as? [[String: Any]] ?? []
            #expect(Set(servers.compactMap { $0["rip"] as? String }) == ["10.97.1.2", "10.97.2.2"], "\(r.stdout)")
            for s in servers {
                // local= is the VIP the router delivered, not the realserver's own address.
                #expect(s["reached"] as? [String] == ["192.0.2.100:\(port)"], "\(s)")
                #expect(s["modes"] as? [String] == ["dr"])
                #expect((s["answers"] as? Int ?? 0) > 0)
            }
        }
        let table = try lab.probe("192.0.2.100:31337", "-n", "20")
        #expect(table.stdout.contains("10.97.1.2") && table.stdout.contains("10.97.2.2") && table.status == 0)
        // Browsers and curl get the line, or JSON when they ask for it.
        let curl = try execute(
            Env.ipPath!,
            [
                "netns", "exec", lab.client, try tool("curl"), "-sS", "-H", "Accept: application/json",
                "http://192.0.2.100:31380/",
            ])
        let answer = try JSONSerialization.jsonObject(with: Data(curl.stdout.utf8)) as? [String: Any]
        #expect(answer?["local"] as? String == "192.0.2.100:31380", "\(curl)")
        #expect((answer?["client"] as? String)?.hasPrefix("10.98.0.2:") == true)
        #expect(agents[0].isRunning && agents[1].isRunning)
    }

    @Test func noAnswerIsExitOne() throws {
        let lab = try ECMPLab()
        let r = try lab.probe("192.0.2.100:31337", "-n", "3", "--timeout", "1")
        #expect(r.status == 1)
        #expect(r.stdout.contains("3 failed") && r.stdout.contains("error: probing 192.0.2.100:31337"), "\(r.stdout)")
    }

    /// A realserver with the test service, and idle, silent and slow clients hogging it.
    @Test func slowAndSilentClientsDoNotDelayOthers() throws {
        let ns = try Namespace()
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100]\ntest_service: { port: 31337, http_port: 31380 }")
        let daemon = try Daemon(ns, profile: profile)
        // 200 silent connections to each port, and one client trickling a request head a byte
        // every 100 ms (slowloris).
        let script = """
            import socket, time
            held = [socket.create_connection(("192.0.2.100", p)) for p in [31337, 31380] for _ in range(200)]
            slow = socket.create_connection(("192.0.2.100", 31380))
            print("ready", flush=True)
            for b in b"GET / HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: " + b"a" * 400:
                slow.send(bytes([b])); time.sleep(0.1)
            """
        let log = ns.stateDir + "-slow.log"
        let hogs = try ns.start([try tool("python3"), "-c", script], log: log)
        defer {
            finish(hogs)
            unlink(log)
        }
        #expect(
            eventually(timeout: 10) { (try? String(contentsOfFile: log, encoding: .utf8))?.contains("ready") == true })
        for port in ["31337", "31380"] {
            let r = try ns.rsagent("probe", "192.0.2.100:\(port)", "-n", "50", "--timeout", "1", "--json")
            #expect(r.json["answered"] as? Int == 50, "port \(port): \(r.stdout)")
        }
        #expect(daemon.isRunning)
    }

    @Test func tenThousandConnectionsLeakNoDescriptors() throws {
        let ns = try Namespace()
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100]\ntest_service: { port: 31337, http_port: 31380 }")
        let daemon = try Daemon(ns, profile: profile)
        func descriptors() -> Int {
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/fd").count) ?? -1
        }
        _ = try ns.rsagent("probe", "192.0.2.100:31380", "-n", "5")
        let before = descriptors()
        let tcp = try ns.rsagent("probe", "192.0.2.100:31337", "-n", "10000", "--json")
        #expect(tcp.json["answered"] as? Int == 10000, "\(tcp.stdout.prefix(400))")
        let http = try ns.rsagent("probe", "192.0.2.100:31380", "-n", "1000", "--json")
        #expect(http.json["answered"] as? Int == 1000)
        var after = -1
        #expect(
            eventually(timeout: 5) {
                after = descriptors()
                return after == before
            }, "descriptors: \(before) before, \(after) after 11,000 connections")
        #expect(daemon.isRunning)
    }
}
