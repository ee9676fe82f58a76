import Foundation
import Netlink
import Testing

@testable import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

/// The pure parts of what real operators do to a realserver (issue 13): one owner per
/// namespace and `include:`, one daemon per state_dir, ARP drift, `lo` that was up, stale
/// sysctls, reload keys, check clients, and the messages people read.
@Suite struct NamespaceClaimTests {
    let claim = NamespaceClaim(
        stateDir: "/var/lib/rsagent", profile: "/etc/rsagent/rsagent.yaml", pid: 42,
        command: "rsagent run -c /etc/rsagent/rsagent.yaml", since: "2026-12-03T10:00:00Z", cookie: 7)

    @Test func anotherStateDirIsRefusedWhileItsOwnerOwnsSomething() {
        #expect(NamespaceClaim.decide(existing: nil, stateDir: "/srv/b", cookie: 7, ownerStillOwns: true) == .take)
        #expect(
            NamespaceClaim.decide(existing: claim, stateDir: "/srv/b", cookie: 7, ownerStillOwns: true)
                == .refuse(claim))
        // The same state_dir refreshes its own claim.
        #expect(
            NamespaceClaim.decide(existing: claim, stateDir: "/var/lib/rsagent", cookie: 7, ownerStillOwns: true)
                == .take)
        // An owner with nothing left here (taken down, state_dir moved away) has no claim.
        #expect(NamespaceClaim.decide(existing: claim, stateDir: "/srv/b", cookie: 7, ownerStillOwns: false) == .take)
        // A claim from an earlier namespace that had the same inode number: stale.
        #expect(NamespaceClaim.decide(existing: claim, stateDir: "/srv/b", cookie: 8, ownerStillOwns: true) == .take)
    }

    @Test func theRefusalNamesTheOwnerAndTheWayOut() {
        let s = claim.refusal
        #expect(s.contains("state_dir /var/lib/rsagent"))
        #expect(s.contains("pid 42 `rsagent run -c /etc/rsagent/rsagent.yaml`"))
        #expect(s.contains("include:"))
        #expect(s.contains("rsagent down -c /etc/rsagent/rsagent.yaml"))
    }
}

@Suite struct IncludeTests {
    /// A fake file system for `include:`: pattern → files.
    func decode(_ main: String, _ files: [String: [(String, String?)]]) throws -> Profile {
        try ProfileDecoder.decode(main, file: "/etc/rsagent/rsagent.yaml") { pattern in
            (files[pattern] ?? []).map { (path: $0.0, text: $0.1) }
        }
    }

    func problems(_ main: String, _ files: [String: [(String, String?)]]) -> [ProfileProblem] {
        do { _ = try decode(main, files) } catch let e as ProfileError { return e.problems } catch {}
        return []
    }

    @Test func teamsFilesAreMerged() throws {
        let p = try decode(
            "mode: dr\nvips: [192.0.2.1]\ninclude: conf.d/*.yaml\n",
            [
                "conf.d/*.yaml": [
                    ("/etc/rsagent/conf.d/a.yaml", "vips: [192.0.2.2]\n"),
                    ("/etc/rsagent/conf.d/b.yaml", "vips:\n  - address: 192.0.2.3\n    services: [tcp/80]\n"),
                    ("/etc/rsagent/conf.d/empty.yaml", ""),
                ]
            ])
        #expect(p.vips.map(\.address.description) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        #expect(p.vips[2].services == [ServicePort(proto: .tcp, port: 80)])
        // Only includes, no `vips:` of its own, and a list of patterns.
        let q = try decode(
            "mode: dr\ninclude: [a/*.yaml, b.yaml]\n",
            ["a/*.yaml": [("/x/a/1.yaml", "vips: [192.0.2.5]\n")], "b.yaml": [("/x/b.yaml", "vips: [192.0.2.6]\n")]])
        #expect(q.vips.count == 2)
    }

    @Test func eachFilesProblemsNameThatFileLineAndColumn() {
        let found = problems(
            "mode: dr\nvips: [192.0.2.1]\ninclude: conf.d/*.yaml\n",
            [
                "conf.d/*.yaml": [
                    ("/c/a.yaml", "vips: [192.0.2.2, 192.0.2.1]\n"),
                    ("/c/b.yaml", "vips: [192.0.2.2]\nmode: tun\n"),
                    ("/c/c.yaml", "vips:\n\t- 192.0.2.9\n"),
                    ("/c/d.yaml", nil),
                ]
            ])
        let lines = found.map(\.description)
        #expect(
            lines.contains(
                "/c/a.yaml:1:19: VIP 192.0.2.1 is listed twice (first in /etc/rsagent/rsagent.yaml on line 2)"))
        #expect(lines.contains("/c/b.yaml:1:8: VIP 192.0.2.2 is listed twice (first in /c/a.yaml on line 1)"))
        #expect(lines.contains { $0.hasPrefix("/c/b.yaml:2:1: unknown key `mode` in an included file") })
        #expect(lines.contains { $0.hasPrefix("/c/c.yaml:2:1:") && $0.contains("tab") })
        #expect(lines.contains { $0.hasPrefix("/c/d.yaml: reading this included file failed") })
    }

    @Test func noVIPsAnywhereIsAProblem() {
        #expect(problems("mode: dr\ninclude: none/*.yaml\n", [:]).first?.message.contains("no VIPs") == true)
    }
}

@Suite struct ProfileMessageTests {
    func firstProblem(_ text: String) -> String {
        do { _ = try ProfileDecoder.decode(text, file: "p.yaml") } catch let e as ProfileError {
            return e.problems.first?.description ?? ""
        } catch {}
        return ""
    }

    @Test func aTabIsCalledATab() {
        for text in ["mode: dr\nvips:\n\t- 1.2.3.4\n", "mode: dr\n\tvips: [1.2.3.4]\n"] {
            #expect(firstProblem(text).contains("a tab character here; YAML indents with spaces only"), "\(text)")
        }
    }

    @Test func aNulByteIsOneLine() {
        let p = firstProblem("mode: dr\nvips: [192.0.2.1]\n\0\0")
        #expect(
            p
                == "p.yaml:3:1: this is not a text file: a NUL byte here; a profile is plain UTF-8 YAML (is this the right file?)"
        )
        #expect(!p.contains("\n"))
    }

    @Test func aDirectoryIsCalledADirectory() {
        do { _ = try ProfileDecoder.load(path: NSTemporaryDirectory()) } catch let e as ProfileError {
            #expect(e.description.contains("it is a directory, not a file"), "\(e)")
            return
        } catch {}
        Issue.record("a directory loaded as a profile")
    }

    @Test func aCorruptStateFileSaysWhichAndWhatToDo() throws {
        let dir = NSTemporaryDirectory() + "rsagent-corrupt-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "{not json".write(toFile: dir + "/state.json", atomically: true, encoding: .utf8)
        do {
            _ = try StateStore(directory: dir).load()
            Issue.record("a corrupt state file loaded")
        } catch {
            let s = "\(error)"
            #expect(s.contains("reading \(dir)/state.json: the file is corrupt (it is not valid JSON)"))
            #expect(s.contains("mv \(dir)/state.json \(dir)/state.json.corrupt"))
            #expect(!s.contains("DecodingError"))
        }
    }
}

@Suite struct DaemonLockTests {
    /// Point 2: a second daemon on a state_dir is refused, naming the first; the first keeps it.
    @Test func aSecondDaemonOnTheSameStateDirIsRefusedNamingTheFirst() throws {
        let dir = NSTemporaryDirectory() + "rsagent-lock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try DaemonLock.acquire(stateDir: dir)
        do {
            _ = try DaemonLock.acquire(stateDir: dir)
            Issue.record("a second daemon lock was granted")
        } catch {
            #expect("\(error)".contains("pid \(getpid())"), "\(error)")
            #expect("\(error)".contains("only one daemon per state_dir"))
        }
        withExtendedLifetime(first) {}
    }
}

@Suite struct DriftTests {
    let dr = profile("mode: dr\nvips: [192.0.2.100]\nrp_filter: loose\n")

    /// Point 4: the few sysctls the daemon re-reads, and the repair their values call for.
    @Test func arpDriftIsFoundFromAHandfulOfValues() {
        let keys = Planner.assertedSysctlKeys(dr, interfaces: ["eth0"])
        #expect(
            Set(keys)
                == [
                    SysctlKey("all", .arpIgnore), SysctlKey("eth0", .arpIgnore), SysctlKey("all", .arpAnnounce),
                    SysctlKey("eth0", .arpAnnounce), SysctlKey("all", .rpFilter), SysctlKey("eth0", .rpFilter),
                ])
        var values: [SysctlKey: Int] = Dictionary(uniqueKeysWithValues: keys.map { ($0, 0) })
        values[SysctlKey("eth0", .arpIgnore)] = 1
        values[SysctlKey("eth0", .arpAnnounce)] = 2
        values[SysctlKey("eth0", .rpFilter)] = 2
        #expect(Planner.sysctlDrift(dr, interfaces: ["eth0"], values: values).isEmpty)
        values[SysctlKey("eth0", .arpIgnore)] = 0  // someone's hand, no event
        #expect(
            Planner.sysctlDrift(dr, interfaces: ["eth0"], values: values)
                == [.setSysctl(key: SysctlKey("eth0", .arpIgnore), from: 0, to: 1)])
        // all=1 makes the effective value 1: no drift.
        values[SysctlKey("all", .arpIgnore)] = 1
        #expect(Planner.sysctlDrift(dr, interfaces: ["eth0"], values: values).isEmpty)
    }

    /// Point 5: `lo` found down before rsagent's first change is set down again by `down`; `lo`
    /// taken down later by someone (and brought back by the daemon) is not.
    @Test func onlyTheStateBeforeTheFirstChangeCountsAsBefore() {
        let fresh = Planner.plan(dr, host: sampleHost(loUp: false), state: AgentState())
        #expect(fresh.actions.first == .setLinkUp(name: "lo", restoreOnDown: true))
        // Later: rsagent's VIP is there (IPv4 stays when lo goes down) — a repair.
        let repaired = Planner.plan(
            dr, host: sampleHost(loUp: false, extra: [owned("192.0.2.100")]), state: AgentState())
        #expect(repaired.actions.first == .setLinkUp(name: "lo", restoreOnDown: false))
        // IPv6-only VIPs vanish with lo: the namespace claim still says rsagent was here.
        let v6 = profile("mode: dr\nvips: ['2001:db8::1']\n")
        var host = sampleHost(loUp: false)
        host.namespaceOwner = v6.stateDir
        #expect(
            Planner.plan(v6, host: host, state: AgentState()).actions.first
                == .setLinkUp(name: "lo", restoreOnDown: false))
        var st = AgentState()
        st.sysctls["net.ipv4.conf.eth0.arp_ignore"] = .init(original: 0, written: 1)
        #expect(
            Planner.plan(dr, host: sampleHost(loUp: false), state: st).actions.first
                == .setLinkUp(name: "lo", restoreOnDown: false))
    }

    /// Point 7: an interface dropped from `interfaces:` gets its sysctls back; one that only
    /// stopped being the default route's keeps them (down restores them).
    @Test func sysctlsOfADroppedInterfaceAreRestored() {
        var st = AgentState()
        st.sysctls["net.ipv4.conf.eth1.arp_ignore"] = .init(original: 0, written: 1)
        st.sysctls["net.ipv4.conf.eth1.arp_announce"] = .init(original: 0, written: 2)
        var host = sampleHost(
            extra: [owned("192.0.2.100")],
            sysctls: [
                SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 2, SysctlKey("eth1", .arpIgnore): 1,
                SysctlKey("eth1", .arpAnnounce): 2,
            ])
        host.links.append(Link(index: .init(rawValue: 3), name: "eth1", isUp: true))
        let listed = profile("mode: dr\nvips: [192.0.2.100]\ninterfaces: [eth0]\n")
        #expect(
            Planner.plan(listed, host: host, state: st).actions == [
                .restoreSysctl(key: SysctlKey("eth1", .arpAnnounce), from: 2, to: 0),
                .restoreSysctl(key: SysctlKey("eth1", .arpIgnore), from: 1, to: 0),
            ])
        let derived = profile("mode: dr\nvips: [192.0.2.100]\n")
        #expect(Planner.plan(derived, host: host, state: st).actions.isEmpty)
        // Changed by someone since: left alone (down warns).
        host.sysctls[SysctlKey("eth1", .arpIgnore)] = 3
        #expect(
            Planner.plan(listed, host: host, state: st).actions == [
                .restoreSysctl(key: SysctlKey("eth1", .arpAnnounce), from: 2, to: 0)
            ])
        // rp_filter no longer managed (leave): restored on the facing interface too.
        var rp = AgentState()
        rp.sysctls["net.ipv4.conf.eth0.rp_filter"] = .init(original: 1, written: 2)
        let leave = sampleHost(
            extra: [owned("192.0.2.100")],
            sysctls: [
                SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 2, SysctlKey("eth0", .rpFilter): 2,
            ])
        #expect(
            Planner.plan(derived, host: leave, state: rp).actions == [
                .restoreSysctl(key: SysctlKey("eth0", .rpFilter), from: 2, to: 1)
            ])
    }

    /// Point 7: keys a reload cannot apply are named.
    @Test func listenerKeysNeedARestart() {
        let a = profile("mode: dr\nvips: [192.0.2.1]\nload: { http: 0.0.0.0:3334 }\n")
        let b = profile("mode: dr\nvips: [192.0.2.1]\nload: { http: 0.0.0.0:3335 }\ntest_service: { port: 31337 }\n")
        #expect(Reconciler.restartOnlyChanges(a, b) == ["load.http", "test_service"])
        #expect(Reconciler.restartOnlyChanges(a, a).isEmpty)
    }
}

@Suite struct CheckClientTests {
    /// Point 10: no client to test with is said, never skipped silently; a client of the wrong
    /// family is named.
    @Test func missingOrMismatchedClientsAreFindings() {
        let v4 = profile("mode: dr\nvips: [192.0.2.1]\n")
        let none = Checks.clients(v4, given: [], used: [])
        #expect(none.map(\.id) == ["client.none"] && none[0].verdict == .warn)
        #expect(none[0].fix.contains("--client"))
        #expect(Checks.clients(v4, given: [], used: [IPAddress("203.0.113.77")!]).isEmpty)
        let wrong = Checks.clients(v4, given: [IPAddress("2001:db8::7")!], used: [IPAddress("2001:db8::7")!])
        #expect(Set(wrong.map(\.id)) == ["client.none", "client.family"])
        #expect(wrong.first { $0.id == "client.family" }?.summary.contains("--client 2001:db8::7 is IPv6") == true)
    }
}
