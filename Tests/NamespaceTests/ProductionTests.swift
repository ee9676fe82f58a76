import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What operators do to a realserver every week (issue 13), each with real processes in a
/// fresh namespace. Every test here failed against 0.1.0.
@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct ProductionTests {
    let vipA = "mode: dr\nvips: [192.0.2.100]\n"

    /// A second profile with its own state_dir in the same namespace: 0.1.0 applied it and
    /// removed the first profile's VIPs as stale. Now it is refused, naming the owner, and
    /// nothing changes; `down` with it is refused too. The teams' VIPs go in `include:` files.
    @Test func oneOwnerPerNamespaceAndIncludeForTheOthers() throws {
        let ns = try Namespace()
        let a = try ns.profile(vipA)
        #expect(try ns.rsagent("apply", "-c", a).status == 0)
        let (b, _) = try ns.secondOwnersProfile()
        defer { ns.removeSecondOwner() }
        let before = try ns.snapshot()
        let refused = try ns.rsagent("apply", "-c", b)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(
            refused.stderr.contains("this network namespace is managed by another rsagent (state_dir \(ns.stateDir)"))
        #expect(refused.stderr.contains("rsagent down -c \(a)"))
        #expect(try ns.snapshot() == before)
        let down = try ns.rsagent("down", "-c", b, "--json")
        #expect(down.status == 2)
        #expect(down.json["result"] as? String == "conflict")
        #expect(try ns.snapshot() == before)
        // A second daemon is refused at once, naming the owner.
        let log = ns.stateDir + "-b.log"
        defer { unlink(log) }
        let second = try execute(Env.binary, ["run", "--netns", ns.name, "-c", b])
        #expect(second.status == 1)
        #expect(second.stderr.contains("managed by another rsagent (state_dir \(ns.stateDir)"), "\(second.stderr)")
        // Another team's VIPs through include: merged into the owner's profile.
        let confd = ns.stateDir + "-conf.d"
        try FileManager.default.createDirectory(atPath: confd, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: confd) }
        try "vips: [192.0.2.200]\n".write(toFile: confd + "/team-b.yaml", atomically: true, encoding: .utf8)
        let merged = try ns.profile(vipA + "include: \(confd)/*.yaml\n")
        #expect(try ns.rsagent("apply", "-c", merged).status == 0)
        #expect(try ns.addresses(on: "lo").isSuperset(of: ["192.0.2.100/32", "192.0.2.200/32"]))
        // Taken down by its owner, the namespace is free for another state_dir.
        #expect(try ns.rsagent("down", "-c", merged).status == 0)
        #expect(try ns.rsagent("apply", "-c", b).status == 0)
        #expect(try ns.rsagent("down", "-c", b).status == 0)
    }

    /// Where a second daemon cannot see the claim (a container with its own /run, here a
    /// private mount namespace) and removes the first one's VIPs, the first does not fight
    /// back: it stops, says who, and tells directors it is out of service; once the other is
    /// gone it re-asserts. 0.1.0 had the two delete each other's VIPs hundreds of times a second.
    @Test func anotherRsagentRemovingTheVIPsIsNotFought() throws {
        let ns = try Namespace()
        let a = try ns.profile(vipA + "load: { agent_check: 127.0.0.1:3333 }\n")
        let first = try Daemon(ns, profile: a)
        let (b, otherDir) = try ns.secondOwnersProfile()
        defer { ns.removeSecondOwner() }
        try FileManager.default.createDirectory(atPath: "/run/rsagent", withIntermediateDirectories: true)
        let second = try Daemon(
            netns: ns.name, logBase: otherDir, profile: b,
            wrapper: [try tool("unshare"), "-m", "sh", "-c", "mount -t tmpfs none /run/rsagent && exec \"$0\" \"$@\""])
        #expect(eventually { first.log.contains("another rsagent daemon (pid \(second.pid)") }, "\(first.log)")
        #expect(first.log.contains("not fighting it"))
        // No loop: over two seconds the VIP set stays the second one's.
        let changes = first.log.components(separatedBy: "repaired:").count
        usleep(2_000_000)
        #expect(try ns.addresses(on: "lo").contains("192.0.2.200/32"))
        #expect(!(try ns.addresses(on: "lo").contains("192.0.2.100/32")))
        #expect(first.log.components(separatedBy: "repaired:").count == changes)
        let agent = try ns.exec(Env.binary, "weight", "127.0.0.1:3333", "--keepalived")
        #expect(agent.status == 1, "\(agent.stderr)")
        #expect(agent.stderr.contains("another rsagent daemon"))
        #expect(second.stop() == 0)
        #expect(eventually { try ns.addresses(on: "lo").contains("192.0.2.100/32") })
        #expect(first.log.contains("is gone; re-asserting"))
        #expect(first.stop() == 0)
    }

    /// A second `rsagent run` on the same state_dir: 0.1.0 re-created the admin socket, so the
    /// live daemon could no longer be drained and `status` said it was not running. Now the
    /// second exits 1 at once naming the first, which keeps its socket.
    @Test func aSecondDaemonOnTheSameStateDirExitsAndLeavesTheFirstAlone() throws {
        let ns = try Namespace()
        let path = try ns.profile(vipA)
        let first = try Daemon(ns, profile: path)
        let second = try execute(Env.binary, ["run", "--netns", ns.name, "-c", path])
        #expect(second.status == 1)
        #expect(second.stderr.contains("pid \(first.pid)"), "\(second.stderr)")
        #expect(second.stderr.contains("only one daemon per state_dir"))
        let drain = try execute(Env.binary, ["drain", "-c", path])
        #expect(drain.status == 0, "\(drain.stderr)")
        let status = try ns.rsagent("status", "-c", path, "--json")
        #expect((status.json["daemon"] as? [String: Any])?["pid"] as? Int == Int(first.pid))
        #expect(first.isRunning)
        #expect(first.stop() == 0)
    }

    /// A daemon that starts in conflict (the VIP also on the facing interface): 0.1.0 applied
    /// nothing yet told directors `ready up 89%`, /healthz 200 and systemd READY=1. Now every
    /// protocol says out of service with the reason until the conflict ends — and then it
    /// converges within 2 s, from the event that ended it.
    @Test func aDaemonInConflictIsOutOfServiceUntilItConverges() throws {
        let ns = try Namespace()
        try ns.sh("addr add 192.0.2.100/32 dev veth0")
        let notify = try NotifySocket(ns.stateDir + ".notify")
        let path = try ns.profile(vipA + "load: { http: 127.0.0.1:3334, agent_check: 127.0.0.1:3333 }\n")
        let d = try Daemon(ns, profile: path, environment: ["NOTIFY_SOCKET": notify.path], resync: 30)
        #expect(eventually { d.log.contains("VIP 192.0.2.100 is also on veth0") })
        let agent = try ns.exec(try tool("python3"), "-c", Self.readLine, "3333")
        #expect(agent.stdout.hasPrefix("down #conflict: VIP 192.0.2.100 is also on veth0"), "\(agent.stdout)")
        let health = try ns.curl("-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:3334/healthz")
        #expect(health.stdout == "503")
        let load = try ns.curl("http://127.0.0.1:3334/load")
        let report = (try? JSONSerialization.jsonObject(with: Data(load.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(report["state"] as? String == "down" && report["weight"] as? Int == 0)
        #expect((report["reason"] as? String)?.contains("also on veth0") == true)
        #expect(try ns.exec(Env.binary, "weight", "127.0.0.1:3334", "--keepalived").status == 1)
        let status = try ns.rsagent("status", "-c", path, "--json")
        #expect(((status.json["daemon"] as? [String: Any])?["not_converged"] as? String)?.contains("veth0") == true)
        // ARP settings were not made (nothing is applied in conflict), and no READY=1.
        #expect(try ns.sysctls()["veth0/arp_ignore"] == 0)
        #expect(!notify.messages().contains { $0.contains("READY=1") })
        // The conflict ends: converged within 2 s, not at the 30 s resync.
        try ns.sh("addr del 192.0.2.100/32 dev veth0")
        let start = Date()
        #expect(eventually(timeout: 2) { try ns.addresses(on: "lo").contains("192.0.2.100/32") })
        let took = Date().timeIntervalSince(start)
        #expect(took < 2, "converged after \(took) s")
        #expect(try ns.exec(try tool("python3"), "-c", Self.readLine, "3333").stdout.hasPrefix("ready up"))
        #expect(eventually { notify.messages().contains { $0.hasPrefix("READY=1") } })
        #expect(d.stop() == 0)
    }

    /// `arp_ignore` set back to 0 by hand raises no kernel event: 0.1.0 left it for up to the
    /// 30 s resync. Now it is repaired within a second or two, with a logged line.
    @Test func arpDriftIsRepairedInSecondsWithoutAnEvent() throws {
        let ns = try Namespace()
        let d = try Daemon(ns, profile: try ns.profile(vipA), resync: 30)
        #expect(eventually { try ns.sysctls()["veth0/arp_ignore"] == 1 })
        try ns.setSysctl("veth0/arp_ignore", 0)
        let start = Date()
        #expect(eventually(timeout: 3) { try ns.sysctls()["veth0/arp_ignore"] == 1 })
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(eventually { d.log.contains("net.ipv4.conf.veth0.arp_ignore is 0 but the profile needs 1") })
        #expect(!d.log.contains("periodic check"))
        #expect(d.stop() == 0)
    }

    /// `lo` was up before rsagent; someone took it down and the daemon brought it back: 0.1.0's
    /// `down` then set `lo` down, cutting the host's loopback. Now it stays up.
    @Test func downNeverTakesDownALoThatWasUpBefore() throws {
        let ns = try Namespace()
        let path = try ns.profile("mode: dr\nvips: ['2001:db8::100']\n")
        let d = try Daemon(ns, profile: path)
        try ns.sh("link set lo down")
        #expect(
            eventually { try ns.links().contains("lo - up") && ns.addresses(on: "lo").contains("2001:db8::100/128") })
        #expect(d.stop() == 0)
        #expect(try ns.rsagent("down", "-c", path).status == 0)
        #expect(try ns.links().contains("lo - up"))
        // In a fresh namespace lo was down before rsagent's first change: down puts it back.
        let fresh = try Namespace(loUp: false)
        let p2 = try fresh.profile("mode: dr\nvips: ['2001:db8::100']\n")
        #expect(try fresh.rsagent("apply", "-c", p2).status == 0)
        #expect(try fresh.rsagent("down", "-c", p2).status == 0)
        #expect(try fresh.links().contains("lo - down"))
    }

    /// A VIP equal to this host's own address: 0.1.0 suggested `ip addr del <RIP>/24 dev
    /// veth0`, which drops the primary address and the default route. Now it says what it is.
    @Test func aVIPThatIsTheRIPIsNamedAndNeverToBeDeleted() throws {
        let ns = try Namespace()
        let r = try ns.rsagent("apply", "-c", try ns.profile("mode: dr\nvips: [10.99.0.2]\n"))
        #expect(r.status == 2)
        #expect(r.stderr.contains("VIP 10.99.0.2 is this host's own address (10.99.0.2/24 on veth0)"), "\(r.stderr)")
        #expect(!r.stderr.contains("ip addr del"))
        let check = try ns.rsagent("check", "-c", try ns.profile("mode: dr\nvips: [10.99.0.2]\n"), "--json")
        #expect(!check.stdout.contains("addr del"))
        #expect(try ns.addresses(on: "veth0").contains("10.99.0.2/24"))
    }

    /// SIGHUP with another state_dir: 0.1.0 took it silently, and a later `down` left the ARP
    /// sysctls changed. Now the reload is refused and `down` restores them; an interface dropped
    /// from `interfaces:` on reload gets its sysctls back at once.
    @Test func aReloadThatMovesStateDirIsRefusedAndDroppedInterfacesAreRestored() throws {
        let ns = try Namespace()
        try ns.sh("link add veth2 type veth peer name veth3")
        try ns.sh("link set veth2 up")
        let before = try ns.sysctls()
        let path = try ns.profile(vipA + "interfaces: [veth0, veth2]\n")
        let d = try Daemon(ns, profile: path)
        #expect(eventually { try ns.sysctls()["veth2/arp_ignore"] == 1 })
        let moved = ns.stateDir + "-moved"
        defer { try? FileManager.default.removeItem(atPath: moved) }
        try (vipA + "interfaces: [veth0, veth2]\nstate_dir: \(moved)\n").write(
            toFile: path, atomically: true, encoding: .utf8)
        kill(d.pid, SIGHUP)
        #expect(eventually { d.log.contains("reload refused: state_dir changed from \(ns.stateDir) to \(moved)") })
        // The interface list shrinks on a valid reload: veth2 gets its values back now.
        _ = try ns.profile(vipA + "interfaces: [veth0]\n")
        kill(d.pid, SIGHUP)
        #expect(eventually { try ns.sysctls()["veth2/arp_ignore"] == before["veth2/arp_ignore"] })
        #expect(eventually { d.log.contains("applied the reloaded profile") })
        #expect(!d.log.contains("repaired:"))
        #expect(d.stop() == 0)
        #expect(try ns.rsagent("down", "-c", path).status == 0)
        #expect(try ns.sysctls() == before)
    }

    /// `--json` is one JSON document whatever goes wrong: 0.1.0 printed nothing on stdout for
    /// an invalid profile, an unusable state_dir or a bad argument.
    @Test func jsonIsAlwaysOneDocument() throws {
        let ns = try Namespace()
        let bad = try ns.profile("mode: dr\nvips: [192.0.2.999]\n")
        let invalid = try ns.rsagent("apply", "-c", bad, "--json")
        #expect(invalid.status == 2)
        let problems = (invalid.json["error"] as? [String: Any])?["problems"] as? [[String: Any]]
        #expect(
            problems?.first?["line"] as? Int == 2 && problems?.first?["file"] as? String == bad, "\(invalid.stdout)")
        // state_dir is a file: the lock cannot be taken.
        let file = ns.stateDir + "-file"
        _ = FileManager.default.createFile(atPath: file, contents: Data())
        defer { unlink(file) }
        let odd = ns.stateDir + "-odd.yaml"
        defer { unlink(odd) }
        try "mode: dr\nvips: [192.0.2.1]\nstate_dir: \(file)/x\n".write(toFile: odd, atomically: true, encoding: .utf8)
        let unlockable = try ns.rsagent("apply", "-c", odd, "--json")
        #expect(unlockable.status == 1)
        #expect(((unlockable.json["error"] as? [String: Any])?["message"] as? String)?.contains(file) == true)
        for args in [
            ["status", "-c", bad, "--json"], ["check", "-c", bad, "--json"], ["down", "-c", bad, "--json"],
            ["check", "-c", bad, "--client", "nope", "--json"],
        ] {
            let r = try ns.rsagent(args)
            #expect(r.status == 2, "\(args)")
            #expect(r.json["error"] != nil, "\(args): \(r.stdout)")
        }
        let noNamespace = try execute(Env.binary, ["status", "--netns", "rsat-no-such-ns", "--json"])
        #expect(
            noNamespace.status == 2 && (noNamespace.json["error"] as? [String: Any]) != nil, "\(noNamespace.stdout)")
        // status --json always has the daemon key, null when none runs.
        let status = try ns.rsagent("status", "-c", try ns.profile(vipA), "--json")
        #expect(status.stdout.contains("\"daemon\" : null"))
    }

    /// An apply waiting for the lock says once who holds it and for how long it will wait.
    @Test func waitingForTheLockIsVisible() throws {
        let ns = try Namespace()
        let path = try ns.profile(vipA)
        try FileManager.default.createDirectory(atPath: ns.stateDir, withIntermediateDirectories: true)
        let lock = ns.stateDir + "/lock"
        try "4242 rsagent apply -c /etc/rsagent/rsagent.yaml\n".write(toFile: lock, atomically: false, encoding: .utf8)
        let holder = try spawn(try tool("flock"), [lock, "sleep", "1.5"])
        defer { _ = wait(holder) }
        usleep(300_000)
        let r = try ns.rsagent("apply", "-c", path)
        #expect(r.status == 0)
        #expect(
            r.stderr.contains(
                "waiting up to 30 s for pid 4242 (`rsagent apply -c /etc/rsagent/rsagent.yaml`), which is changing this host"
            ), "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "waiting up to").count == 2)
    }

    /// `check` with no client it can test from says so instead of skipping the route checks.
    @Test func checkWithoutAClientSaysSo() throws {
        let ns = try Namespace()
        try ns.sh("route del default")
        try ns.sh("addr add 203.0.113.1/24 dev veth0")
        let path = try ns.profile(vipA + "interfaces: [veth0]\n")
        #expect(try ns.rsagent("apply", "-c", path).status == 0)
        let r = try ns.rsagent("check", "-c", path, "--json")
        let findings = r.json["findings"] as? [[String: Any]] ?? []
        #expect(findings.contains { $0["id"] as? String == "client.none" && $0["verdict"] as? String == "warn" })
        let v6 = try ns.rsagent("check", "-c", path, "--client", "2001:db8::9", "--json")
        let f6 = v6.json["findings"] as? [[String: Any]] ?? []
        #expect(f6.contains { $0["id"] as? String == "client.family" })
    }

    /// The small things: no arguments is an error with the help; `weight` names the port range,
    /// brackets IPv6, and an unreachable network is a routing question; admin commands find the
    /// socket from -c.
    @Test func messagesPeopleRead() throws {
        let ns = try Namespace()
        let bare = try execute(Env.binary, [])
        #expect(bare.status == 2 && bare.stderr.contains("USAGE: rsagent <subcommand>"))
        let port = try execute(Env.binary, ["weight", "192.0.2.1:99999"])
        #expect(port.status == 2 && port.stderr.contains("port 99999 is outside 1–65535"), "\(port.stderr)")
        try ns.sh("route del default")
        let unreachable = try ns.exec(Env.binary, "weight", "203.0.113.9:3334")
        #expect(unreachable.stderr.contains("this host has no route to 203.0.113.9"), "\(unreachable.stderr)")
        #expect(!unreachable.stderr.contains("check that rsagent run serves"))
        let v6 = try ns.exec(Env.binary, "weight", "[2001:db8::9]:3334")
        #expect(v6.stderr.contains("reading the load report of [2001:db8::9]:3334"), "\(v6.stderr)")
    }
}

extension Namespace {
    /// A profile with a `state_dir` of its own (another would-be owner of this namespace) and
    /// VIP 192.0.2.200: (profile path, state_dir).
    func secondOwnersProfile() throws -> (String, String) {
        let dir = stateDir + "-b", path = stateDir + "-b.yaml"
        try "mode: dr\nvips: [192.0.2.200]\nstate_dir: \(dir)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return (path, dir)
    }

    func removeSecondOwner() {
        try? FileManager.default.removeItem(atPath: stateDir + "-b")
        unlink(stateDir + "-b.yaml")
    }
}

extension ProductionTests {
    /// A client trickling a request head one byte every 0.4 s never goes quiet, so an idle
    /// timeout never ends it; the header deadline (5 s from its first byte) does.
    @Test func aTricklingRequestHeadIsCutAtTheHeaderDeadline() throws {
        let ns = try Namespace()
        let d = try Daemon(ns, profile: try ns.profile(vipA + "load: { http: 127.0.0.1:3334 }\n"))
        let r = try ns.exec(try tool("python3"), "-c", Self.trickle, "3334")
        let seconds = Double(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(seconds >= 4.5 && seconds <= 7, "cut after \(seconds) s: \(r.stderr)")
        #expect(d.stop() == 0)
    }

    /// Trickles `GET /load` plus an endless header; prints the seconds until the server cut it
    /// (gives up after 12 s).
    static let trickle = """
        import socket, sys, time
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
        start = time.monotonic()
        s.send(b"GET /load HTTP/1.1\\r\\nX-a: ")
        while time.monotonic() - start < 12:
            time.sleep(0.4)
            try:
                s.send(b"a")
            except OSError:
                break
        print(round(time.monotonic() - start, 2))
        """

    /// Reads what a TCP server says on connect (the agent-check line); arg: the port.
    static let readLine = """
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
        print(s.recv(4096).decode(), end="")
        """
}

/// A `NOTIFY_SOCKET` for the daemon: collects its sd_notify messages.
final class NotifySocket {
    let path: String
    private let fd: Int32

    init(_ path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw HarnessError("binding \(path): \(String(cString: strerror(errno)))") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    private var received: [String] = []

    /// Every message so far.
    func messages() -> [String] {
        var buf = [UInt8](repeating: 0, count: 512)
        while true {
            let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
            if n <= 0 { break }
            received.append(String(decoding: buf[0..<n], as: UTF8.self))
        }
        return received
    }
}
