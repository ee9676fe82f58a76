import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Taking a realserver out without losing a client: `drain --wait` against real connections
/// held by a client process to a real listener on the VIP.
@Suite(.enabled(if: Env.canRun, Env.skipReason), .serialized)
struct MaintenanceTests {
    /// A listener on VIP:8080 and `n` clients connected to it; they all close `closeAfter`
    /// seconds after connecting (never, when nil), and the script logs `closed MONOTONIC`.
    /// `dualStack`: the listener is `[::]:8080` taking IPv4 too, as nginx's `ipv6only=off`.
    func holdConnections(
        _ ns: Namespace, _ n: Int, closeAfter: Double?, dualStack: Bool = false
    ) throws -> (pid: pid_t, log: String) {
        let listen =
            dualStack
            ? """
            srv = socket.socket(socket.AF_INET6); srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(("::", 8080)); srv.listen(64)
            """
            : """
            srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("0.0.0.0", 8080)); srv.listen(64)
            """
        let script = """
            import socket, time
            \(listen)
            held = [socket.create_connection(("192.0.2.100", 8080)) for _ in range(\(n))]
            held += [srv.accept()[0] for _ in range(\(n))]
            print("ready", flush=True)
            time.sleep(\(closeAfter ?? 60))
            for s in held: s.close()
            print("closed %f" % time.monotonic(), flush=True)
            time.sleep(60)
            """
        let log = ns.stateDir + "-clients.log"
        let pid = try ns.start([try tool("python3"), "-c", script], log: log)
        #expect(
            eventually(timeout: 10) { (try? String(contentsOfFile: log, encoding: .utf8))?.contains("ready") == true })
        return (pid, log)
    }

    /// A service on the VIP and the load report; `extra` adds top-level keys.
    func daemonProfile(_ ns: Namespace, extra: String = "") throws -> String {
        try ns.profile(
            """
            mode: dr
            vips:
              - address: 192.0.2.100
                services: [tcp/8080]
            load: { http: 127.0.0.1:3334 }
            """ + "\n" + extra)
    }

    func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    @Test func drainWaitReturnsOnlyAfterTheLastClientCloses() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try daemonProfile(ns))
        let clients = try holdConnections(ns, 3, closeAfter: 3)
        defer {
            finish(clients.pid)
            unlink(clients.log)
        }
        let r = try ns.rsagent("drain", "--wait", "--timeout", "30", "--socket", ns.stateDir + "/admin.sock")
        let returned = monotonic()
        #expect(r.status == 0, "\(r.stderr)")
        // It waited for the close, and noticed it promptly (the benchmark measures how promptly).
        let log = (try? String(contentsOfFile: clients.log, encoding: .utf8)) ?? ""
        let closed = log.split(separator: "\n").first { $0.hasPrefix("closed ") }.flatMap { Double($0.dropFirst(7)) }
        #expect(closed != nil, "drain --wait returned before the clients closed: \(r.stdout)")
        if let closed { #expect(returned >= closed && returned - closed < 5, "returned \(returned - closed) s after") }
        // One line per change when not on a terminal: 3 left, then 0.
        #expect(r.stdout.contains("drain: 3 connections left (192.0.2.100:8080 3)"), "\(r.stdout)")
        #expect(r.stdout.contains("drain: no connections left to the VIP services"), "\(r.stdout)")
        #expect(try ns.curl("http://127.0.0.1:3334/weight").stdout.trimmed == "0")
        #expect(daemon.isRunning)
    }

    /// With no connection open, a drain is still not over while a director that polls the
    /// report has not read it: in that gap it would send new clients. The "director" here polls
    /// `/weight` every 2 s and logs each read; the wait ends at its second read of 0.
    @Test func drainWaitWaitsForThePollingDirectorToReadTheDrain() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try daemonProfile(ns))
        let script = """
            import time, urllib.request
            while True:
                w = urllib.request.urlopen("http://127.0.0.1:3334/weight", timeout=2).read().strip()
                print("read %f %s" % (time.monotonic(), w.decode()), flush=True)
                time.sleep(2)
            """
        let log = ns.stateDir + "-director.log"
        let poller = try ns.start([try tool("python3"), "-c", script], log: log)
        defer {
            finish(poller)
            unlink(log)
        }
        // Two reads make it a regular poller.
        #expect(
            eventually(timeout: 10) {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count >= 2
            })
        let r = try ns.rsagent("drain", "--wait", "--json", "--timeout", "20", "--socket", ns.stateDir + "/admin.sock")
        let returned = monotonic()
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.contains(#""left":0,"directors":["127.0.0.1"]"#) == true, "\(r.stdout)")
        #expect(lines.last?.contains(#""drained":true"#) == true && lines.last?.contains("directors") == false)
        let reads = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        // Returned after the director's second read of weight 0, promptly.
        let zeros = reads.filter { $0.hasSuffix(" 0") }.compactMap { Double($0.split(separator: " ")[1]) }
        #expect(zeros.count >= 2, "the director did not read weight 0 twice: \(reads)")
        if zeros.count >= 2 {
            #expect(returned >= zeros[1], "returned before the director's second read of drain")
            #expect(returned - zeros[1] < 2, "returned \(returned - zeros[1]) s after it")
        }
        #expect(daemon.isRunning)
    }

    /// A dual-stack listener holds its IPv4 clients on IPv6 sockets (`::ffff:192.0.2.100`):
    /// they are the VIP's connections all the same, for the load report and for the drain.
    @Test func clientsOfADualStackListenerAreCounted() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try daemonProfile(ns))
        let clients = try holdConnections(ns, 2, closeAfter: 3, dualStack: true)
        defer {
            finish(clients.pid)
            unlink(clients.log)
        }
        #expect(
            eventually(timeout: 10) {
                (try? ns.curl("http://127.0.0.1:3334/load").stdout)?.contains(#""established":2"#) == true
            }, "the load report does not count them: \((try? ns.curl("http://127.0.0.1:3334/load").stdout) ?? "")")
        let r = try ns.rsagent("drain", "--wait", "--timeout", "30", "--socket", ns.stateDir + "/admin.sock")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("drain: 2 connections left (192.0.2.100:8080 2)"), "\(r.stdout)")
        #expect(daemon.isRunning)
    }

    @Test func drainWaitTimesOutNamingWhoIsStillConnected() throws {
        let ns = try Namespace()
        let daemon = try Daemon(ns, profile: try daemonProfile(ns))
        let clients = try holdConnections(ns, 3, closeAfter: nil)
        defer {
            finish(clients.pid)
            unlink(clients.log)
        }
        let socket = ns.stateDir + "/admin.sock"
        let r = try ns.rsagent("drain", "--wait", "--timeout", "2", "--socket", socket)
        #expect(r.status == 1)
        #expect(r.stderr.contains("timed out after 2s with 3 connections left (192.0.2.100:8080 3)"), "\(r.stderr)")
        #expect(r.stderr.contains("clients: 192.0.2.100 3"), "\(r.stderr)")
        #expect(r.stderr.contains("the admin state stays drain"), "\(r.stderr)")

        // --json: every line of stdout is one object; the last says it did not drain, and who.
        let j = try ns.rsagent("maint", "--wait", "--timeout", "1", "--json", "--socket", socket)
        #expect(j.status == 1)
        let objects = j.stdout.split(separator: "\n").map {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        #expect(!objects.isEmpty && objects.allSatisfy { $0 != nil }, "\(j.stdout)")
        let last = objects.last.flatMap { $0 }
        #expect(last?["drained"] as? Bool == false)
        #expect(last?["left"] as? Int == 3)
        #expect((last?["connections"] as? [String: Int])?["192.0.2.100:8080"] == 3)
        #expect((last?["clients"] as? [String: Int])?["192.0.2.100"] == 3)
        func adminState() throws -> String? {
            let o = try JSONSerialization.jsonObject(with: Data(try ns.curl("http://127.0.0.1:3334/load").stdout.utf8))
            return (o as? [String: Any])?["admin_state"] as? String
        }
        #expect(try adminState() == "maint")

        // Ctrl-C ends the wait, not the state: exit 1, and it says so.
        let out = ns.stateDir + "-wait.out"
        let err = ns.stateDir + "-wait.err"
        defer {
            unlink(out)
            unlink(err)
        }
        let waiting = try spawn(
            Env.binary, ["drain", "--netns", ns.name, "--wait", "--socket", socket], stdout: out, stderr: err)
        #expect(
            eventually(timeout: 10) {
                (try? String(contentsOfFile: out, encoding: .utf8))?.contains("drain: 3 connections left") == true
            })
        kill(waiting, SIGINT)
        #expect(wait(waiting) == 1)
        let said = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        #expect(said.contains("interrupted after") && said.contains("the admin state stays drain"), "\(said)")
        #expect(try adminState() == "drain")

        // Bad arguments change nothing: exit 2, the state stays maint.
        #expect(try ns.rsagent("maint", "--timeout", "2", "--socket", socket).status == 2)
        #expect(try ns.rsagent("maint", "--wait", "--timeout", "soon", "--socket", socket).status == 2)
        #expect(try adminState() == "drain")
        #expect(daemon.isRunning)
    }

    /// `on_stop: drain`: SIGTERM with connections open leaves the VIP (and tells directors
    /// drain) until they close, then removes it and restores the sysctls; with a short
    /// `drain_timeout` the VIP goes when it runs out, and the log names who was still connected.
    @Test func onStopDrainWaitsForTheConnectionsThenRemovesTheVIPs() throws {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let daemon = try Daemon(ns, profile: try daemonProfile(ns, extra: "on_stop: drain\ndrain_timeout: 30s"))
        let clients = try holdConnections(ns, 2, closeAfter: 4)
        defer {
            finish(clients.pid)
            unlink(clients.log)
        }
        kill(daemon.pid, SIGTERM)
        #expect(eventually(timeout: 5) { daemon.log.contains("on_stop: drain: 2 connections left") }, "\(daemon.log)")
        // Still serving while the clients are there: the VIP stays, directors read weight 0.
        #expect(daemon.exitStatus(within: 1) == nil)
        #expect(try ns.addresses(on: "lo").contains("192.0.2.100/32"))
        #expect(try ns.curl("http://127.0.0.1:3334/weight").stdout.trimmed == "0")
        // They close: the daemon removes the VIP, restores the host, and exits 0.
        #expect(daemon.exitStatus(within: 15) == 0, "\(daemon.log)")
        let log = (try? String(contentsOfFile: clients.log, encoding: .utf8)) ?? ""
        #expect(log.contains("closed "), "the daemon stopped before the clients closed: \(daemon.log)")
        #expect(daemon.log.contains("no connections left to the VIP services"), "\(daemon.log)")
        #expect(try ns.snapshot() == before)
    }

    @Test func onStopDrainGivesUpAtTheDrainTimeout() throws {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let daemon = try Daemon(ns, profile: try daemonProfile(ns, extra: "on_stop: drain\ndrain_timeout: 2s"))
        let clients = try holdConnections(ns, 3, closeAfter: nil)
        defer {
            finish(clients.pid)
            unlink(clients.log)
        }
        kill(daemon.pid, SIGTERM)
        #expect(daemon.exitStatus(within: 1) == nil, "it did not wait: \(daemon.log)")
        #expect(daemon.exitStatus(within: 15) == 0, "\(daemon.log)")
        #expect(
            daemon.log.contains("stopped waiting (drain_timeout) after 2s with 3 connections left"), "\(daemon.log)")
        #expect(daemon.log.contains("clients: 192.0.2.100 3"), "\(daemon.log)")
        #expect(try ns.snapshot() == before)
    }
}
