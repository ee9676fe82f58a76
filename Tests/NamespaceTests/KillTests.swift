import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct KillTests {
    /// `kill -9` in the middle of an apply of 1,000 VIPs (IPv4 and IPv6), then apply again: the
    /// VIP set is exactly the profile's, foreign addresses are untouched, sysctls are right, and
    /// `down` still restores everything — from kernel state and state_dir alone.
    @Test func killDuringApplyThenApplyConverges() throws {
        let ns = try Namespace()
        try ns.sh("addr add 203.0.113.7/32 dev lo")
        try ns.sh("addr add 10.99.0.77/24 dev veth0")
        let before = try ns.snapshot()
        let v4 = (0..<600).map { "192.0.\(2 + $0 / 250).\(1 + $0 % 250)/32" }
        let v6 = (0..<400).map { "2001:db8::\(String($0 + 1, radix: 16))/128" }
        let wanted = Set(v4 + v6)
        let yaml = "mode: dr\nvips:\n" + (v4 + v6).map { "  - '\($0)'" }.joined(separator: "\n")
        let profile = try ns.profile(yaml)
        let foreignOnLo: Set = ["127.0.0.1/8", "::1/128", "203.0.113.7/32"]

        var delayMs = 60.0
        var interrupted = 0
        for _ in 0..<12 where interrupted < 3 {
            let pid = try spawn(Env.binary, ["apply", "--netns", ns.name, "-c", profile])
            usleep(useconds_t(delayMs * 1000))
            kill(pid, SIGKILL)
            let status = wait(pid)

            let present = try ns.addresses(on: "lo").subtracting(foreignOnLo)
            let killedMidway = status == 128 + SIGKILL && !present.isEmpty && present.count < wanted.count
            if killedMidway { interrupted += 1 }
            print("kill-test: delay \(Int(delayMs)) ms, \(present.count) of \(wanted.count) VIPs present when killed")
            // Aim the next kill into the middle of the adds.
            if present.isEmpty { delayMs *= 1.5 } else if present.count == wanted.count { delayMs *= 0.6 }

            let again = try ns.rsagent("apply", "-c", profile)
            #expect(again.status == 0, "\(again.stderr)")
            let lo = try ns.addresses(on: "lo")
            #expect(lo.subtracting(foreignOnLo) == wanted)
            #expect(lo.isSuperset(of: foreignOnLo))
            #expect(try ns.addresses(on: "veth0").contains("10.99.0.77/24"))
            let s = try ns.sysctls()
            #expect(s["veth0/arp_ignore"] == 1 && s["veth0/arp_announce"] == 2)

            let down = try ns.rsagent("down", "-c", profile)
            #expect(down.status == 0, "\(down.stderr)")
            #expect(try ns.snapshot() == before)
        }
        #expect(interrupted >= 1, "no kill landed in the middle of an apply; last delay \(delayMs) ms")
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
        let a = try spawn(Env.binary, ["apply", "--netns", ns.name, "-c", profile])
        let b = try spawn(Env.binary, ["apply", "--netns", ns.name, "-c", profile])
        #expect(wait(a) == 0)
        #expect(wait(b) == 0)
        #expect(try ns.addresses(on: "lo").subtracting(["127.0.0.1/8", "::1/128"]) == Set(vips.map { $0 + "/32" }))
        #expect(try ns.rsagent("down", "-c", profile).status == 0)
    }
}
