import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SplitMix64: a seeded generator, so a failing run of random kills can be replayed with
/// `RSAGENT_FAULT_SEED=N`.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Faults rsagent must survive without losing a VIP or touching what is not its own.
@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct FaultTests {
    /// `kill -9` at 100 random moments during `apply` and `down` of 1,000 VIPs (600 IPv4, 400
    /// IPv6), each followed by `apply`: every time the VIP set is exactly the profile's, the
    /// foreign address on lo, the second RIP and the foreign device are untouched, and the ARP
    /// sysctls are right; every `down` restores the namespace exactly, sysctls included.
    @Test func hundredRandomKillsDuringApplyAndDown() throws {
        let ns = try Namespace()
        try ns.sh("addr add 203.0.113.7/32 dev lo")
        try ns.sh("addr add 10.99.0.77/24 dev veth0")
        try ns.sh("link add foreign0 type veth peer name foreign1")
        try ns.sh("addr add 198.51.100.1/24 dev foreign0")
        try ns.setSysctl("foreign0/arp_ignore", 8)  // odd, so a stray write would show
        let before = try ns.snapshot()
        let v4 = (0..<600).map { "192.0.\(2 + $0 / 250).\(1 + $0 % 250)/32" }
        let v6 = (0..<400).map { "2001:db8::\(String($0 + 1, radix: 16))/128" }
        let wanted = Set(v4 + v6)
        let profile = try ns.profile("mode: dr\nvips:\n" + (v4 + v6).map { "  - '\($0)'" }.joined(separator: "\n"))
        let foreignOnLo: Set = ["127.0.0.1/8", "::1/128", "203.0.113.7/32"]

        // How long a whole run takes here, so the kills land over the start-up and the changes.
        func timed(_ op: String) throws -> Double {
            let t = Date()
            let r = try ns.rsagent(op, "-c", profile)
            if r.status != 0 { throw HarnessError("\(op): \(r.stderr)") }
            return Date().timeIntervalSince(t)
        }
        let fullApply = try timed("apply")
        let startUp = try timed("apply")  // nothing to change: reading the profile and the host
        let window = [
            "apply": startUp * 0.6..<fullApply * 1.1, "down": startUp * 0.6..<max(try timed("down"), startUp) * 1.1,
        ]
        let seed =
            ProcessInfo.processInfo.environment["RSAGENT_FAULT_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 1...UInt64.max)
        var rng = SeededGenerator(state: seed)
        print("fault-test: seed \(seed) (RSAGENT_FAULT_SEED replays it), kill windows (s) \(window)")

        var midway = ["apply": 0, "down": 0]
        for i in 0..<100 {
            let op = i.isMultiple(of: 2) ? "apply" : "down"
            if op == "apply" {
                let down = try ns.rsagent("down", "-c", profile)
                #expect(down.status == 0, "\(down.stderr)")
                #expect(try ns.snapshot() == before, "down after kill \(i - 1) (seed \(seed))")
            }
            let delay = Double.random(in: window[op]!, using: &rng)
            let pid = try spawn(Env.binary, [op, "--netns", ns.name, "-c", profile])
            usleep(useconds_t(delay * 1_000_000))
            kill(pid, SIGKILL)
            let status = wait(pid)
            let present = try ns.addresses(on: "lo").subtracting(foreignOnLo)
            if status == 128 + SIGKILL && !present.isEmpty && present.count < wanted.count { midway[op]! += 1 }

            let again = try ns.rsagent("apply", "-c", profile)
            #expect(again.status == 0, "apply after kill \(i) during \(op): \(again.stderr)")
            let lo = try ns.addresses(on: "lo")
            #expect(lo.subtracting(foreignOnLo) == wanted, "kill \(i) during \(op) at \(Int(delay * 1000)) ms")
            #expect(lo.isSuperset(of: foreignOnLo))
            #expect(try ns.addresses(on: "veth0").contains("10.99.0.77/24"))
            #expect(try ns.addresses(on: "foreign0") == ["198.51.100.1/24"])
            #expect(try ns.links() == before.links)
            let s = try ns.sysctls()
            #expect(s["veth0/arp_ignore"] == 1 && s["veth0/arp_announce"] == 2)
            #expect(s["foreign0/arp_ignore"] == 8 && s["all/arp_ignore"] == before.sysctls["all/arp_ignore"])
        }
        #expect(try ns.rsagent("down", "-c", profile).status == 0)
        #expect(try ns.snapshot() == before)
        print(
            "fault-test: kills that left a partial VIP set: apply \(midway["apply"]!), down \(midway["down"]!) of 50 each"
        )
        // Timing on a busy machine varies; what matters is that some kills did land midway.
        #expect(midway["apply"]! >= 5 && midway["down"]! >= 5, "too few kills landed midway: \(midway) (seed \(seed))")
    }

    /// A read-only or full `state_dir` (a tmpfs in a private mount namespace): `apply` says which
    /// file and why in one sentence, exits 1 and changes nothing.
    @Test func unwritableOrFullStateDirChangesNothing() throws {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let dir = ns.stateDir + "-mnt"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let profile = ns.stateDir + "-mnt.yaml"
        defer { unlink(profile) }
        try "mode: dr\nvips: [192.0.2.100, '2001:db8::100']\nstate_dir: \(dir)/state\n".write(
            toFile: profile, atomically: true, encoding: .utf8)
        let apply = "\(Env.binary) apply --netns \(ns.name) -c \(profile)"
        let cases = [
            ("mount -t tmpfs -o ro,size=64k tmpfs \(dir)", "writing \(dir)/state: Read-only file system"),
            (
                "mount -t tmpfs -o size=8k tmpfs \(dir) && mkdir \(dir)/state && { dd if=/dev/zero of=\(dir)/fill bs=1k count=64 2>/dev/null; true; }",
                "recording it in \(dir)/state/state.json first failed (No space left on device), so it was not done; free space"
            ),
        ]
        for (mount, message) in cases {
            let r = try execute(
                "/usr/bin/unshare", ["--mount", "--propagation", "private", "sh", "-c", "\(mount) && \(apply)"])
            #expect(r.status == 1, "\(r.stderr)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one sentence: \(r.stderr)")
            #expect(try ns.snapshot() == before)
        }
    }

    /// Events lost to a full receive queue (the daemon stopped while thousands of link changes
    /// and a VIP removal happen): the daemon says so, re-reads everything and repairs the VIP.
    @Test func netlinkOverrunIsNoticedAndRepaired() throws {
        let ns = try Namespace()
        let d = try Daemon(ns, profile: try ns.profile("mode: dr\nvips: [192.0.2.100, 192.0.2.101]\n"))
        let batch = ns.stateDir + ".batch"
        try String(repeating: "link set veth1 down\nlink set veth1 up\n", count: 1500)
            .write(toFile: batch, atomically: true, encoding: .utf8)
        defer { unlink(batch) }
        kill(d.pid, SIGSTOP)
        try ns.ip("-n", ns.name, "-batch", batch)
        try ns.sh("addr del 192.0.2.100/32 dev lo")  // its event is lost: the queue is full
        kill(d.pid, SIGCONT)
        #expect(
            eventually { d.log.contains("netlink events were lost (receive queue overrun); re-reading everything") })
        #expect(eventually { try ns.addresses(on: "lo").contains("192.0.2.100/32") })
        #expect(eventually { d.log.contains("cause: netlink overrun") }, "\(d.log)")
        #expect(d.stop() == 0)
    }

    /// The profile deleted under a running daemon, then SIGHUP: the reload is refused in one
    /// line, the running profile is kept and repairs go on.
    @Test func profileDeletedUnderARunningDaemon() throws {
        let ns = try Namespace()
        let path = try ns.profile("mode: dr\nvips: [192.0.2.100]\n")
        let d = try Daemon(ns, profile: path)
        unlink(path)
        kill(d.pid, SIGHUP)
        #expect(eventually { d.log.contains("reload rejected: \(path): reading the profile failed: no such file") })
        #expect(eventually { d.log.contains("keeping the running profile") })  // the next line of the log
        try ns.sh("addr del 192.0.2.100/32 dev lo")
        #expect(eventually { try ns.addresses(on: "lo").contains("192.0.2.100/32") })
        #expect(d.stop() == 0)
    }

    /// The facing interface named in the profile renamed under the daemon: one warning naming
    /// old and new name and the fix; its ARP settings, the VIPs and the RIP stay as they were;
    /// renamed back, it is asserted again.
    @Test func aRenamedFacingInterfaceIsNamedAndNothingIsDamaged() throws {
        let ns = try Namespace()
        let d = try Daemon(ns, profile: try ns.profile("mode: dr\ninterfaces: [veth0]\nvips: [192.0.2.100]\n"))
        let vips = try ns.addresses(on: "lo")
        // The kernel renames only a device that is down (EBUSY otherwise).
        for step in ["link set veth0 down", "link set veth0 name eth9", "link set eth9 up"] { try ns.sh(step) }
        #expect(
            eventually {
                d.log.contains(
                    "interface veth0 was renamed to eth9: its ARP settings stay as they are, but rsagent asserts them by name; name eth9 in `interfaces:` and reload (SIGHUP), or rename it back"
                )
            }, "\(d.log)")
        #expect(eventually { d.log.contains("interface veth0 in `interfaces:` does not exist on this host") })
        let s = try ns.sysctls()
        #expect(s["eth9/arp_ignore"] == 1 && s["eth9/arp_announce"] == 2)
        #expect(try ns.addresses(on: "lo") == vips)
        #expect(try ns.addresses(on: "eth9").contains("10.99.0.2/24"))
        #expect(d.isRunning)
        try ns.setSysctl("eth9/arp_ignore", 0)
        for step in ["link set eth9 down", "link set eth9 name veth0", "link set veth0 up"] { try ns.sh(step) }
        #expect(eventually { try ns.sysctls()["veth0/arp_ignore"] == 1 })
        #expect(d.stop() == 0)
    }
}

@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct ConcurrencyTests {
    /// Two applies at once in one namespace: the lock serialises them, the second re-reads the
    /// host, and both succeed (without the lock the second fails with EEXIST and rolls back).
    @Test func concurrentAppliesBothSucceed() throws {
        let ns = try Namespace()
        let vips = (0..<1000).map { "198.18.\($0 / 250).\($0 % 250 + 1)" }
        let profile = try ns.profile("mode: dr\nvips:\n" + vips.map { "  - \($0)" }.joined(separator: "\n"))
        let logs = [ns.stateDir + "-a.log", ns.stateDir + "-b.log"]
        defer { logs.forEach { unlink($0) } }
        let a = try spawn(Env.binary, ["apply", "--netns", ns.name, "-c", profile], stderr: logs[0])
        let b = try spawn(Env.binary, ["apply", "--netns", ns.name, "-c", profile], stderr: logs[1])
        func log(_ i: Int) -> String { (try? String(contentsOfFile: logs[i], encoding: .utf8)) ?? "" }
        #expect(wait(a) == 0, "\(log(0))")
        #expect(wait(b) == 0, "\(log(1))")
        #expect(try ns.addresses(on: "lo").subtracting(["127.0.0.1/8", "::1/128"]) == Set(vips.map { $0 + "/32" }))
        #expect(try ns.rsagent("down", "-c", profile).status == 0)
    }
}
