import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A program from Debian's packages that these tests drive (installed by `.ci/run`).
func tool(_ name: String) throws -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
        return "\(dir)/\(name)"
    }
    throw HarnessError("\(name) is not installed (apt-get install the package providing it; .ci/run does)")
}

extension Namespace {
    /// Runs a command inside this namespace (`ip netns exec`) and waits for it.
    @discardableResult
    func exec(_ args: String...) throws -> Output {
        try execute(Env.ipPath!, ["netns", "exec", name] + args)
    }

    /// Starts a command inside this namespace; `ip netns exec` execs it, so the pid is its own.
    func start(_ args: [String], log: String = "/dev/null") throws -> pid_t {
        try spawn(Env.ipPath!, ["netns", "exec", name] + args, stdout: log, stderr: log)
    }

    /// `curl` inside the namespace: body on stdout, exit status as curl's.
    func curl(_ args: String...) throws -> Output {
        try execute(Env.ipPath!, ["netns", "exec", name, try tool("curl"), "-sS", "--max-time", "5"] + args)
    }
}

/// Ends a helper process the test started (by its pid, which stays ours until reaped here):
/// SIGTERM, then SIGKILL after two seconds.
func finish(_ pid: pid_t) {
    kill(pid, SIGTERM)
    var status: Int32 = 0
    for _ in 0..<40 {
        if waitpid(pid, &status, WNOHANG) == pid { return }
        usleep(50_000)
    }
    kill(pid, SIGKILL)
    _ = wait(pid)
}

@Suite(.enabled(if: Env.canRun, Env.skipReason), .serialized)
struct DirectorFeedbackTests {
    /// The load report on both ports, readable from the namespace's own network only.
    /// `weight` and `slowStart` go under `load:`, `extra` at the top level.
    func loadProfile(
        _ ns: Namespace, weight: String = "{ max: 60 }", slowStart: String = "0", extra: String = ""
    ) throws -> String {
        try ns.profile(
            """
            mode: dr
            vips:
              - address: 192.0.2.100
                services: [tcp/8080]
            load:
              http: 0.0.0.0:3334
              agent_check: 0.0.0.0:3333
              weight: \(weight)
              slow_start: \(slowStart)
            \(extra)
            """)
    }

    /// HAProxy's view of server `be/rs1`: (operational state, admin state bits, user weight).
    func haproxyServer(_ socket: String) throws -> (op: Int, admin: Int, weight: Int)? {
        let ask = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
            s.sendall(b"show servers state be\\n"); print(s.makefile().read())
            """
        let r = try execute(try tool("python3"), ["-c", ask, socket])
        // "2 be 1 rs1 127.0.0.1 2 0 60 100 …": op state, admin state, user weight, initial weight.
        guard let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix("2 be 1 rs1 ") }) else {
            return nil
        }
        let f = line.split(separator: " ")
        return (Int(f[5]) ?? -1, Int(f[6]) ?? -1, Int(f[7]) ?? -1)
    }

    /// HAProxy 2.6 with server `be/rs1` checked by the agent on 10.99.0.2:3333 every
    /// `agentInter`: its admin socket, log and pid. The caller ends it with `finish(pid)` and
    /// `unlink`s `files`.
    func startHAProxy(
        _ ns: Namespace, agentInter: String
    ) throws -> (socket: String, log: String, pid: pid_t, files: [String]) {
        let socket = ns.stateDir + "-haproxy.sock"
        let config = ns.stateDir + "-haproxy.cfg"
        try """
        global
          stats socket \(socket) mode 600 level admin
        defaults
          mode tcp
          timeout connect 1s
          timeout client 5s
          timeout server 5s
        backend be
          server rs1 10.99.0.2:8080 weight 100 agent-check agent-addr 10.99.0.2 agent-port 3333 agent-inter \(agentInter)
        frontend fe
          bind 127.0.0.1:8000
          default_backend be

        """.write(toFile: config, atomically: true, encoding: .utf8)
        let log = ns.stateDir + "-haproxy.log"
        let pid = try ns.start([try tool("haproxy"), "-db", "-f", config], log: log)
        return (socket, log, pid, [config, log])
    }

    @Test func haproxyFollowsTheAgentsWeightAndAdminState() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns))
        let (socket, haproxyLog, haproxy, files) = try startHAProxy(ns, agentInter: "500ms")
        defer {
            finish(haproxy)
            files.forEach { unlink($0) }
        }
        func agentWeight() throws -> Int { Int(try ns.curl("http://127.0.0.1:3334/weight").stdout.trimmed) ?? -1 }

        // Ready: HAProxy's weight is the agent's (percent of the configured 100).
        var seen: (op: Int, admin: Int, weight: Int)?
        #expect(
            eventually(timeout: 10) {
                seen = try haproxyServer(socket)
                return seen?.weight == (try agentWeight()) && seen?.op == 2
            }, "HAProxy shows \(String(describing: seen)), the agent says \((try? agentWeight()) ?? -1)")
        #expect((try agentWeight()) <= 60)

        // Each admin state, and what HAProxy must show for it: drain is its DRAIN (admin bit
        // 0x08, still up), maint its MAINT (bit 0x01, stopped), ready back with the agent's weight.
        let expected: [(String, ((op: Int, admin: Int, weight: Int), Int) -> Bool)] = [
            ("drain", { s, _ in s.admin & 0x08 != 0 && s.op == 2 }),
            ("maint", { s, _ in s.admin & 0x01 != 0 && s.op == 0 }),
            ("ready", { s, w in s.admin == 0 && s.op == 2 && s.weight == w }),
        ]
        for (state, holds) in expected {
            #expect(try ns.rsagent(state, "--socket", ns.stateDir + "/admin.sock").status == 0)
            #expect(
                eventually(timeout: 10) {
                    seen = try haproxyServer(socket)
                    let w = try agentWeight()
                    return seen.map { holds($0, w) } == true
                }, "after \(state) HAProxy shows \(String(describing: seen))")
        }
        // Not converged (the VIP also put on veth0 by hand: the daemon sees the address event):
        // HAProxy marks the server DOWN and logs the agent's reason; fixed, it is back up.
        try ns.sh("addr add 192.0.2.100/32 dev veth0")
        #expect(
            eventually(timeout: 10) {
                seen = try haproxyServer(socket)
                return seen?.op == 0
            }, "in conflict HAProxy shows \(String(describing: seen))")
        try ns.sh("addr del 192.0.2.100/32 dev veth0")
        #expect(
            eventually(timeout: 10) {
                seen = try haproxyServer(socket)
                return seen?.op == 2 && seen?.admin == 0
            }, "converged again, HAProxy shows \(String(describing: seen))")
        let log = (try? String(contentsOfFile: haproxyLog, encoding: .utf8)) ?? ""
        #expect(log.contains("enters drain state"), "\(log)")
        #expect(log.contains("is also on veth0"), "HAProxy did not show the agent's reason: \(log)")
        #expect(daemon.isRunning)
    }

    @Test func promtoolAcceptsTheMetrics() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns))
        let r = try ns.exec(
            "/bin/sh", "-c",
            "\(try tool("curl")) -sS http://127.0.0.1:3334/metrics | \(try tool("promtool")) check metrics")
        #expect(r.status == 0, "promtool: \(r.stdout) \(r.stderr)")
        let metrics = try ns.curl("http://127.0.0.1:3334/metrics").stdout
        #expect(metrics.contains("rsagent_weight "))
        #expect(metrics.contains("rsagent_service_established_connections{vip=\"192.0.2.100\",service=\"tcp/8080\"} 0"))
        #expect(daemon.isRunning)
    }

    @Test func keepalivedExitCodesFollowTheAdminState() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns))
        let admin = ns.stateDir + "/admin.sock"
        // The weight follows this machine's load, which other tests change between two reads: each
        // read is checked on its own (exit 2 + the printed weight, within the scale asked for).
        // A generous --timeout: on a loaded machine a 2 s read can time out (exit 1, no weight).
        for port in ["3333", "3334"] {
            let r = try ns.rsagent("weight", "127.0.0.1:\(port)", "--keepalived", "--timeout", "10")
            let w = Int(r.stdout.trimmed) ?? -1
            #expect((1...60).contains(w) && r.status == 2 + Int32(w), "port \(port): \(r)")
            let scaled = try ns.rsagent(
                "weight", "127.0.0.1:\(port)", "--keepalived", "--max", "200", "--timeout", "10")
            let s = Int(scaled.stdout.trimmed) ?? -1
            #expect((2...200).contains(s) && scaled.status == 2 + Int32(s), "port \(port), --max 200: \(scaled)")
        }
        #expect(try ns.rsagent("drain", "--socket", admin).status == 0)
        for port in ["3333", "3334"] {
            let r = try ns.rsagent("weight", "127.0.0.1:\(port)", "--keepalived")
            #expect(r.status == 2 && r.stdout.trimmed == "0", "drain, port \(port): \(r)")
        }
        #expect(try ns.rsagent("maint", "--socket", admin).status == 0)
        for port in ["3333", "3334"] {
            #expect(try ns.rsagent("weight", "127.0.0.1:\(port)", "--keepalived").status == 1)
            #expect(try ns.rsagent("weight", "127.0.0.1:\(port)").status == 1)
        }
        #expect(try ns.rsagent("ready", "--socket", admin).status == 0)
        let unreachable = try ns.rsagent("weight", "127.0.0.1:3339", "--keepalived")
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("127.0.0.1:3339") && unreachable.stderr.contains("Connection refused"))
        // A mistyped MISC_CHECK must fail visibly, not exit 2 ("weight 0").
        #expect(try ns.rsagent("weight", "nonsense", "--keepalived").status == 1)
        #expect(try ns.rsagent("weight", "nonsense").status == 2)
        #expect(daemon.isRunning)
    }

    /// `load.slow_start` with HAProxy 2.6 following the agent: after `ready`, the weight HAProxy
    /// shows rises from the minimum to the agent's weight within the window, never falling.
    /// `drain --wait` is not over before HAProxy has read the drain, even with no connection
    /// open: HAProxy checks the agent every 3 s, and in that gap it would still send clients.
    @Test func drainWaitReturnsOnlyOnceHAProxyHasReadTheDrain() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns))
        let (socket, _, haproxy, files) = try startHAProxy(ns, agentInter: "3s")
        defer {
            finish(haproxy)
            files.forEach { unlink($0) }
        }
        // Two agent checks make HAProxy a regular reader.
        #expect(eventually(timeout: 15) { try haproxyServer(socket)?.op == 2 })
        usleep(6_500_000)
        let r = try ns.rsagent("drain", "--wait", "--json", "--timeout", "20", "--socket", ns.stateDir + "/admin.sock")
        let seen = try haproxyServer(socket)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").first?.contains(#""directors":["#) == true, "\(r.stdout)")
        #expect(
            seen.map { $0.admin & 0x08 != 0 } == true,
            "drain --wait returned, HAProxy shows \(String(describing: seen))")
        #expect(daemon.isRunning)
    }

    @Test func haproxyFollowsTheSlowStartRamp() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns, weight: "{ max: 20, min: 1 }", slowStart: "10s"))
        let (socket, _, haproxy, files) = try startHAProxy(ns, agentInter: "250ms")
        defer {
            finish(haproxy)
            files.forEach { unlink($0) }
        }
        let admin = ns.stateDir + "/admin.sock"
        #expect(try ns.rsagent("drain", "--socket", admin).status == 0)
        #expect(eventually(timeout: 10) { try haproxyServer(socket).map { $0.admin & 0x08 != 0 } == true })
        #expect(try ns.rsagent("ready", "--socket", admin).status == 0)
        var seen: [Int] = []
        for _ in 0..<14 {
            if let s = try haproxyServer(socket), s.admin == 0 { seen.append(s.weight) }
            usleep(1_000_000)
        }
        let final = Int(try ns.curl("http://127.0.0.1:3334/weight").stdout.trimmed) ?? -1
        #expect(seen.count >= 10, "HAProxy's weights: \(seen)")
        #expect((seen.first ?? 99) <= 5, "the ramp starts near the minimum: \(seen)")
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0 <= $1 }, "never falls: \(seen)")
        #expect(seen.last == final && final >= 15, "ends at the agent's weight \(final): \(seen)")
        let load = try ns.curl("http://127.0.0.1:3334/load").stdout
        #expect(load.contains("\"slow_start\""), "\(load)")
        #expect(daemon.isRunning)
    }

    @Test func connectionsToADeclaredServiceAreCounted() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns))
        func established() throws -> Int? {
            let o = try JSONSerialization.jsonObject(with: Data(try ns.curl("http://127.0.0.1:3334/load").stdout.utf8))
            let services = ((o as? [String: Any])?["metrics"] as? [String: Any])?["services"] as? [[String: Any]]
            return services?.first { $0["vip"] as? String == "192.0.2.100" }?["established"] as? Int
        }
        #expect(try established() == 0)
        // 25 clients held open against a listener on the VIP, plus one to the RIP on the same
        // port, which is not the VIP's and must not count.
        let script = """
            import socket, time
            srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("0.0.0.0", 8080)); srv.listen(64)
            held = [socket.create_connection(("192.0.2.100", 8080)) for _ in range(25)]
            held.append(socket.create_connection(("10.99.0.2", 8080)))
            held += [srv.accept()[0] for _ in range(26)]
            print("ready", flush=True); time.sleep(30)
            """
        let log = ns.stateDir + "-clients.log"
        let clients = try ns.start([try tool("python3"), "-c", script], log: log)
        defer {
            finish(clients)
            unlink(log)
        }
        var seen: Int?
        #expect(
            eventually(timeout: 10) {
                seen = try established()
                return seen == 25
            },
            "established: \(String(describing: seen)); clients: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")"
        )
        kill(clients, SIGKILL)
        #expect(eventually(timeout: 10) { try established() == 0 })
        #expect(daemon.isRunning)
    }

    @Test func readersOutsideAllowAreRefusedAndCounted() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns, extra: "  allow: [10.99.0.0/24]"))
        // From the RIP: allowed. From loopback: outside load.allow, closed unanswered.
        #expect(try ns.curl("http://10.99.0.2:3334/weight").status == 0)
        let refused = try ns.curl("http://127.0.0.1:3334/weight")
        #expect(refused.status != 0 && refused.stdout.isEmpty, "\(refused)")
        let agent = try ns.rsagent("weight", "127.0.0.1:3333")
        #expect(agent.status == 1 && agent.stderr.contains("load.allow"), "\(agent)")
        #expect(try ns.rsagent("weight", "10.99.0.2:3333").status == 0)
        let metrics = try ns.curl("http://10.99.0.2:3334/metrics").stdout
        #expect(metrics.contains("rsagent_listener_refused_connections_total{listener=\"http\"} 1"), "\(metrics)")
        #expect(metrics.contains("rsagent_listener_refused_connections_total{listener=\"agent_check\"} 1"))
        #expect(daemon.isRunning)
    }

    @Test func writesAreRefusedAndNothingChanges() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns))
        for method in ["POST", "PUT", "DELETE"] {
            let r = try ns.curl("-o", "/dev/null", "-w", "%{http_code}", "-X", method, "http://127.0.0.1:3334/weight")
            #expect(r.stdout == "405")
        }
        #expect(try ns.curl("-X", "POST", "-d", "drain", "http://127.0.0.1:3334/load").stdout.contains("read-only"))
        #expect(try ns.curl("http://127.0.0.1:3334/healthz").stdout == "ok\n")
        #expect(DaemonSignalsFile.adminState(ns.stateDir) == "ready")
        #expect(daemon.isRunning)
    }

    @Test func pipelinedMalformedAndOversizedRequests() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try loadProfile(ns))
        func raw(_ request: String) throws -> String {
            let script = """
                import socket, sys
                s = socket.create_connection(("127.0.0.1", 3334)); s.settimeout(3)
                s.sendall(sys.argv[1].encode()); out = b""
                try:
                    while True:
                        b = s.recv(65536)
                        if not b: break
                        out += b
                except socket.timeout: pass
                print(out.decode(errors="replace"), end="")
                """
            return try ns.exec(try tool("python3"), "-c", script, request).stdout
        }
        // Two pipelined requests, answered in order on one connection; the second closes it.
        let two = try raw("GET /weight HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        #expect(two.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "\(two)")
        #expect(two.hasSuffix("ok\n"))
        #expect(try raw("GARBAGE\r\n\r\n").hasPrefix("HTTP/1.1 400 Bad Request"))
        let big = try raw("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 40_000))
        #expect(big.hasPrefix("HTTP/1.1 431 "), "\(big.prefix(80))")
        #expect(daemon.isRunning)
    }

    @Test func stagingStartsDrainedUntilReadyAndRemembers() throws {
        let ns = try Namespace()
        let profile = try loadProfile(ns, extra: "initial_state: drain")
        var daemon: Daemon? = try Daemon(ns, profile: profile)
        #expect(try ns.rsagent("weight", "127.0.0.1:3333").stdout.trimmed == "0")
        #expect(try ns.rsagent("status", "-c", profile, "--json").json["admin_state"] as? String == "drain")
        #expect(daemon?.log.contains("admin state: drain (initial_state") == true)
        #expect(try ns.rsagent("ready", "--socket", ns.stateDir + "/admin.sock").status == 0)
        #expect(Int(try ns.rsagent("weight", "127.0.0.1:3333").stdout.trimmed) ?? 0 > 0)
        // A restart keeps what the operator set: initial_state counts only the first time.
        #expect(daemon?.stop() == 0)
        daemon = try Daemon(ns, profile: profile)
        #expect(Int(try ns.rsagent("weight", "127.0.0.1:3333").stdout.trimmed) ?? 0 > 0)
        #expect(daemon?.isRunning == true)
    }

    @Test func aHeldDownRealserverTellsHAProxyDown() throws {
        let ns = try Namespace()
        let profile = try loadProfile(ns)
        let daemon = try Daemon(ns, profile: profile)
        #expect(try ns.rsagent("down", "-c", profile).status == 0)
        var line = ""
        #expect(
            eventually(timeout: 5) {
                line = try ns.exec(try tool("bash"), "-c", "exec 3<>/dev/tcp/127.0.0.1/3333; cat <&3").stdout
                return line == "down #held down by `rsagent down`\n"
            }, "agent said \(line)")
        _ = daemon
    }

    @Test func aTakenPortStopsTheDaemonWithOneSentence() throws {
        let ns = try Namespace()
        let holder = try ns.start([
            try tool("python3"), "-c",
            "import socket,time; s=socket.socket(); s.bind(('0.0.0.0',3334)); s.listen(); time.sleep(30)",
        ])
        defer { finish(holder) }
        usleep(300_000)
        let r = try ns.rsagent("run", "-c", try loadProfile(ns))
        #expect(r.status == 1)
        #expect(r.stderr.contains("listening on 0.0.0.0:3334 for load.http: Address already in use"), "\(r.stderr)")
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// The admin state file, read the way the daemon reads it.
enum DaemonSignalsFile {
    static func adminState(_ stateDir: String) -> String {
        ((try? String(contentsOfFile: stateDir + "/admin-state", encoding: .utf8)) ?? "ready").trimmed
    }
}
