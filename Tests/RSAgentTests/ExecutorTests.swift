import Foundation
import Netlink
import Testing

@testable import RSAgent

@Suite struct ExecutorTests {
    func tempStore() -> StateStore {
        StateStore(directory: NSTemporaryDirectory() + "rsagent-test-\(UUID().uuidString)")
    }

    /// GUE and GRE with IPv4 and IPv6 VIPs on lo: each decapsulating device is created and
    /// set up, the FOU port added, rp_filter turned off where IPv4 arrives on a device without
    /// an address (and on `all`); `down` removes the FOU port; a later profile without GUE
    /// removes it too.
    @Test func everyDecapsulationIsPlannedAndUndone() throws {
        let p = profile(
            "mode: tun\ndevice: lo\ntunnel: { type: [gue, gre], port: 6080 }\nvips: [192.0.2.110, '2001:db8::110']\n")
        let fake = FakeHost(sampleHost())
        fake.state.sysctls[SysctlKey("all", .rpFilter)] = 1
        let plan = Planner.plan(p, host: fake.state, state: AgentState())
        #expect(plan.conflicts.isEmpty)
        for (name, kind) in [("gre0", "gre"), ("sit0", "sit"), ("tunl0", "ipip")] {
            #expect(plan.actions.contains(.loadTunnelModule(device: name, kind: kind)), "\(name)")
            #expect(plan.actions.contains(.setLinkUp(name: name)), "\(name)")
        }
        #expect(plan.actions.contains(.addFOUPort(FOUPort(port: 6080, family: .ipv4))))
        for dev in ["tunl0", "gre0", "all"] {
            #expect(
                plan.actions.contains {
                    if case .setSysctl(SysctlKey(dev, .rpFilter), _, 0) = $0 { true } else { false }
                }, "\(dev)")
        }
        #expect(
            !plan.actions.contains {
                if case .setSysctl(SysctlKey("sit0", .rpFilter), _, _) = $0 { true } else { false }
            }, "IPv6 inside: no rp_filter")
        let store = tempStore()
        defer { store.clear() }
        let ex = Executor(host: fake, store: store, state: AgentState())
        #expect(ex.apply(plan.actions).outcome == .converged)
        #expect(ex.state.fouPorts == [FOUPort(port: 6080, family: .ipv4)])
        #expect(ex.state.devices.sorted() == ["gre0", "sit0", "tunl0"], "this fake namespace had no fallback devices")
        #expect(Planner.plan(p, host: fake.state, state: ex.state).actions.isEmpty, "converged: nothing more")
        // GUE dropped: its FOU port goes, its devices (no longer needed) too.
        let gre = profile("mode: tun\ndevice: lo\ntunnel: { type: gre }\nvips: [192.0.2.110, '2001:db8::110']\n")
        let next = Planner.plan(gre, host: fake.state, state: ex.state)
        #expect(next.actions.contains(.removeFOUPort(FOUPort(port: 6080, family: .ipv4))))
        #expect(next.actions.contains(.deleteDevice(name: "tunl0", kind: "ipip")))
        // down: the FOU port and the devices rsagent made.
        let down = Planner.planDown(host: fake.state, state: ex.state)
        #expect(down.actions.contains(.removeFOUPort(FOUPort(port: 6080, family: .ipv4))))
        #expect(down.actions.contains(.deleteDevice(name: "sit0", kind: "sit")))
    }

    /// IPv4 VIPs inside IPv6 (4in6): ip6tnl0 goes to mode any, recorded, and back on `down`.
    @Test func ip6tnlModeIsSetRecordedAndRestored() throws {
        let p = profile("mode: tun\ndevice: lo\ntunnel: { outer: [ipv6] }\nvips: [192.0.2.110]\n")
        var host = sampleHost()
        var fallback = Link(index: .init(rawValue: 9), name: "ip6tnl0", kind: "ip6tnl", isUp: false, isNoARP: true)
        fallback.tunnel = TunnelParameters(proto: DecapDevice.ip6ip6Mode)
        host.links.append(fallback)
        for n in SysctlName.allCases { host.sysctls[SysctlKey("ip6tnl0", n)] = 0 }
        let fake = FakeHost(host)
        let plan = Planner.plan(p, host: fake.state, state: AgentState())
        #expect(plan.conflicts.isEmpty)
        #expect(plan.actions.contains(.setTunnelMode(device: "ip6tnl0", from: 41, to: 0)))
        let store = tempStore()
        defer { store.clear() }
        let ex = Executor(host: fake, store: store, state: AgentState())
        #expect(ex.apply(plan.actions).outcome == .converged)
        #expect(fake.state.link(named: "ip6tnl0")?.tunnel?.proto == 0)
        #expect(ex.state.tunnelModes["ip6tnl0"] == .init(original: 41, written: 0))
        #expect(Planner.plan(p, host: fake.state, state: ex.state).actions.isEmpty, "converged: nothing more")
        // Someone sets it back: the next pass repairs it (and keeps the first original).
        try fake.setTunnelMode(name: "ip6tnl0", proto: 41)
        #expect(
            Planner.plan(p, host: fake.state, state: ex.state).actions == [
                .setTunnelMode(device: "ip6tnl0", from: 41, to: 0)
            ])
        try fake.setTunnelMode(name: "ip6tnl0", proto: 0)
        // A profile without IPv4 inside IPv6 puts the mode back.
        let v6 = profile("mode: tun\ndevice: lo\ntunnel: { outer: [ipv6] }\nvips: ['2001:db8::110']\n")
        #expect(
            Planner.plan(v6, host: fake.state, state: ex.state).actions.contains(
                .restoreTunnelMode(device: "ip6tnl0", from: 0, to: 41)))
        let down = Planner.planDown(host: fake.state, state: ex.state)
        #expect(down.actions.contains(.restoreTunnelMode(device: "ip6tnl0", from: 0, to: 41)))
        let report = ex.down(down)
        #expect(report.failures.isEmpty && fake.state.link(named: "ip6tnl0")?.tunnel?.proto == 41)
        #expect(ex.state.tunnelModes.isEmpty)
        // Changed by someone else since: left, with a warning.
        var st = AgentState()
        st.tunnelModes["ip6tnl0"] = .init(original: 41, written: 0)
        try fake.setTunnelMode(name: "ip6tnl0", proto: 4)
        let other = Planner.planDown(host: fake.state, state: st)
        #expect(
            other.actions.isEmpty && other.warnings.first?.contains("ip6tnl0 mode was changed by someone else") == true)
    }

    /// `csum: true`: a GRE tunnel of rsagent's own per facing interface, made, repaired when its
    /// settings drift, deleted by `down`; a device of that name rsagent did not make is a conflict.
    @Test func ownChecksummedGRETunnelIsMadeRepairedAndDeleted() throws {
        let p = profile("mode: tun\ndevice: lo\ntunnel: { type: gre, csum: true }\nvips: [192.0.2.110]\n")
        let fake = FakeHost(sampleHost())
        let own = OwnTunnel(name: "rsgre0", kind: "gre", link: "eth0", checksums: true)
        let plan = Planner.plan(p, host: fake.state, state: AgentState())
        #expect(plan.conflicts.isEmpty)
        #expect(plan.actions.contains(.createOwnTunnel(own)))
        #expect(plan.actions.contains(.setLinkUp(name: "rsgre0", restoreOnDown: false)))
        #expect(!plan.actions.contains { if case .loadTunnelModule = $0 { true } else { false } }, "no gre0")
        #expect(
            plan.actions.contains {
                if case .setSysctl(SysctlKey("rsgre0", .rpFilter), _, 0) = $0 { true } else { false }
            })
        let store = tempStore()
        defer { store.clear() }
        let ex = Executor(host: fake, store: store, state: AgentState())
        #expect(ex.apply(plan.actions).outcome == .converged)
        #expect(ex.state.devices == ["rsgre0"] && fake.state.link(named: "rsgre0")?.alias == ownerAlias)
        #expect(Planner.plan(p, host: fake.state, state: ex.state).actions.isEmpty, "converged: nothing more")
        // Its checksum flag lost (someone remade it): deleted and made again.
        let i = fake.state.links.firstIndex { $0.name == "rsgre0" }!
        fake.state.links[i].tunnel?.inputChecksum = false
        let repair = Planner.plan(p, host: fake.state, state: ex.state).actions
        #expect(
            repair.first == .deleteOwnTunnel(OwnTunnel(name: "rsgre0", kind: "gre", link: "eth0", checksums: false)))
        #expect(repair.contains(.createOwnTunnel(own)))
        #expect(
            ex.apply(repair).outcome == .converged && fake.state.link(named: "rsgre0")?.tunnel?.inputChecksum == true)
        // down deletes it, and does not try to restore the sysctls of the device it deleted.
        let down = Planner.planDown(host: fake.state, state: ex.state)
        #expect(down.actions.contains(.deleteDevice(name: "rsgre0", kind: "gre")))
        #expect(
            !down.actions.contains {
                if case let .restoreSysctl(k, _, _) = $0 { k.interface == "rsgre0" } else { false }
            })
        #expect(ex.down(down).failures.isEmpty && fake.state.link(named: "rsgre0") == nil)
        // Not rsagent's: a conflict, nothing changed.
        fake.state.links.append(Link(index: .init(rawValue: 50), name: "rsgre0", kind: "gre"))
        let foreign = Planner.plan(p, host: fake.state, state: AgentState())
        #expect(foreign.conflicts.map(\.id) == ["tunnel.foreign"])
    }

    /// A state file written before FOU ports were recorded still reads (none recorded).
    @Test func stateFilesWithoutFOUPortsStillRead() throws {
        let old = #"{"version": 1, "sysctls": {}, "devices": ["lvs0"], "linksSetUp": []}"#
        let state = try JSON.decode(AgentState.self, from: old)
        #expect(state.devices == ["lvs0"] && state.fouPorts.isEmpty)
    }

    @Test func applyConvergesAndRecordsOriginals() throws {
        let store = tempStore()
        defer { store.clear() }
        let p = profile("mode: dr\ndevice: dummy\nvips: [192.0.2.100, 192.0.2.101]\nstate_dir: \(store.directory)\n")
        let fake = FakeHost(sampleHost())
        let r = try Operations.apply(profile: p, path: "p", host: fake, dryRun: false, adopt: false)
        #expect(r.result == .converged)
        #expect(fake.state.link(named: "lvs0")?.alias == ownerAlias)
        let st = try store.load()
        #expect(st.devices == ["lvs0"])
        #expect(st.sysctls["net.ipv4.conf.eth0.arp_ignore"] == .init(original: 0, written: 1))
        let again = try Operations.apply(profile: p, path: "p", host: fake, dryRun: false, adopt: false)
        #expect(again.result == .unchanged)
        let down = try Operations.down(stateDir: store.directory, host: fake)
        #expect(down.result == .removed)
        #expect(fake.state.link(named: "lvs0") == nil)
        #expect(fake.state.sysctls == sampleHost().sysctls)
        #expect(!FileManager.default.fileExists(atPath: store.path))
    }

    @Test func failureMidwayRollsBackEverythingOfThisRun() throws {
        let before = sampleHost(loUp: false)
        let fake = FakeHost(before)
        fake.failOn = { $0 == "add 192.0.2.102 lo" }
        let store = tempStore()
        defer { store.clear() }
        let p = profile("mode: dr\nvips: [192.0.2.100, 192.0.2.101, 192.0.2.102]\n")
        let plan = Planner.plan(p, host: before, state: AgentState())
        let ex = Executor(host: fake, store: store, state: AgentState())
        let report = ex.apply(plan.actions)
        #expect(report.outcome == .rolledBack)
        #expect(report.failures.count == 1)
        #expect(report.rolledBack.count == 5)  // lo up, 2 sysctls, 2 adds
        #expect(fake.state.addresses == before.addresses)
        #expect(fake.state.sysctls == before.sysctls)
        #expect(fake.state.link(named: "lo")?.isUp == false)
        #expect(ex.state == AgentState())
    }

    /// Undoing a device deletion re-creates the kind that was deleted: a tunl0 rsagent made
    /// comes back through ipip, a dummy as a dummy (it once always came back as a dummy).
    @Test func undoingADeletedDeviceRecreatesItsKind() throws {
        let fake = FakeHost(sampleHost())
        _ = try fake.ensureTunnelDevice(name: "tunl0", kind: "ipip")
        try fake.createDevice(name: "old0", kind: "dummy")
        fake.failOn = { $0 == "add 192.0.2.100 lo" }
        let store = tempStore()
        defer { store.clear() }
        var st = AgentState(); st.devices = ["old0", "tunl0"]
        let plan = Planner.plan(profile("mode: dr\nvips: [192.0.2.100]\n"), host: fake.state, state: st)
        let deletions = plan.actions.filter { $0.kind == "delete_device" }
        #expect(deletions == [.deleteDevice(name: "old0", kind: "dummy"), .deleteDevice(name: "tunl0", kind: "ipip")])
        // The deletions first, then a change that fails: both are undone.
        let failing = Action.addAddress(IPAddress("192.0.2.100")!, device: "lo")
        let report = Executor(host: fake, store: store, state: st).apply(deletions + [failing])
        #expect(report.outcome == .rolledBack)
        #expect(fake.state.link(named: "tunl0")?.kind == "ipip")
        #expect(fake.state.link(named: "old0")?.kind == "dummy")
        #expect(fake.log.filter { $0 == "modprobe ipip" }.count == 2)  // made, then made again
    }

    /// tunl0 that rsagent had to create is recorded, and undone when the run fails.
    @Test func aTunnelDeviceRsagentMadeIsUndone() throws {
        let fake = FakeHost(sampleHost())
        fake.failOn = { $0 == "add 192.0.2.100 tunl0" }
        let store = tempStore()
        defer { store.clear() }
        let plan = Planner.plan(profile("mode: tun\nvips: [192.0.2.100]\n"), host: fake.state, state: AgentState())
        #expect(plan.actions.contains(.loadTunnelModule(device: "tunl0", kind: "ipip")))
        let ex = Executor(host: fake, store: store, state: AgentState())
        let report = ex.apply(plan.actions)
        #expect(report.outcome == .rolledBack)
        #expect(report.rolledBack.contains(.loadTunnelModule(device: "tunl0", kind: "ipip")))
        #expect(fake.state.link(named: "tunl0") == nil)
        #expect(ex.state == AgentState())
    }

    @Test func rollbackFailureIsReportedAsPartial() {
        let fake = FakeHost(sampleHost())
        fake.failOn = { $0 == "add 192.0.2.101 lo" || $0 == "del 192.0.2.100 lo" }
        let store = tempStore()
        defer { store.clear() }
        let p = profile("mode: dr\nvips: [192.0.2.100, 192.0.2.101]\n")
        let report = Executor(host: fake, store: store, state: AgentState())
            .apply(Planner.plan(p, host: fake.state, state: AgentState()).actions)
        #expect(report.outcome == .partial)
        #expect(report.rollbackFailures.count == 1)
    }

    @Test func unwritableStateDirStopsBeforeAnyChange() {
        let fake = FakeHost(sampleHost())
        let store = StateStore(directory: "/proc/rsagent-cannot-exist")
        let p = profile("mode: dr\nvips: [192.0.2.100]\n")
        let report = Executor(host: fake, store: store, state: AgentState())
            .apply(Planner.plan(p, host: fake.state, state: AgentState()).actions)
        #expect(report.outcome == .rolledBack)
        #expect(fake.log.isEmpty)
        #expect(
            "\(report.failures[0].error)".hasPrefix("writing /proc/rsagent-cannot-exist: No such file or directory"))
        // The operator's sentence names the file first, not the change that was about to be made.
        let sentence = Explain.sentence(report.failures[0].action, report.failures[0].error)
        #expect(
            sentence.hasSuffix(
                "recording it in /proc/rsagent-cannot-exist first failed (No such file or directory), so it was not done; make it writable for root, or set `state_dir` elsewhere"
            ), "\(sentence)")
    }

    @Test func sysctlOriginalSurvivesASecondRun() throws {
        let fake = FakeHost(sampleHost())
        let store = tempStore()
        defer { store.clear() }
        var st = AgentState()
        st.sysctls["net.ipv4.conf.eth0.arp_ignore"] = .init(original: 0, written: 1)
        // Someone reset it to 0 meanwhile; the original stays the first one recorded.
        let ex = Executor(host: fake, store: store, state: st)
        _ = ex.apply([.setSysctl(key: SysctlKey("eth0", .arpIgnore), from: 0, to: 2)])
        #expect(ex.state.sysctls["net.ipv4.conf.eth0.arp_ignore"] == .init(original: 0, written: 2))
        #expect(try store.load() == ex.state)
    }

    @Test func downGoesOnPastFailuresAndKeepsFailedRestores() throws {
        let host = sampleHost(
            extra: [owned("192.0.2.100"), owned("192.0.2.101")],
            sysctls: [SysctlKey("eth0", .arpIgnore): 1])
        let fake = FakeHost(host)
        fake.failOn = { $0 == "del 192.0.2.100 lo" || $0.hasPrefix("sysctl net.ipv4.conf.eth0.arp_ignore") }
        let store = tempStore()
        defer { store.clear() }
        var st = AgentState()
        st.sysctls["net.ipv4.conf.eth0.arp_ignore"] = .init(original: 0, written: 1)
        try store.save(st)
        let report = Executor(host: fake, store: store, state: st).down(Planner.planDown(host: host, state: st))
        #expect(report.outcome == .partial)
        #expect(!fake.state.addresses.contains { $0.address == IPAddress("192.0.2.101") })
        #expect(try store.load().sysctls.keys.sorted() == ["net.ipv4.conf.eth0.arp_ignore"])
    }
}

@Suite struct ExplainTests {
    @Test func dummyMissingNamesTheModule() {
        let e = NetlinkError(
            operation: "ip link add lvs0 type dummy", errno: EOPNOTSUPP, libnlCode: 10,
            extack: "Unknown device type")
        let s = Explain.sentence(.createDevice(name: "lvs0", kind: "dummy"), e)
        #expect(s.hasPrefix("creating dummy device lvs0: kernel lacks dummy device support (modprobe dummy)"))
        #expect(s.contains("Unknown device type"))
        #expect(s.contains("use `device: lo`"))
        #expect(!s.contains("\n"))
    }

    @Test func existingAddressSaysWhoseItIs() {
        let e = NetlinkError(
            operation: "ip addr add", errno: EEXIST, libnlCode: 6, extack: "ipv4: Address already assigned")
        let s = Explain.sentence(.addAddress(IPAddress("192.0.2.10")!, device: "lo"), e)
        #expect(
            s.hasPrefix(
                "adding 192.0.2.10/32 to lo: address already assigned by another program (not owned by rsagent)"))
        #expect(s.contains("ipv4: Address already assigned"))
        #expect(s.contains("take it over with `rsagent apply --adopt`, or drop it from the profile"))
    }

    @Test func permissionProblemsSayRunAsRoot() {
        let e = SystemError(operation: "x", errno: EACCES, reason: "Permission denied")
        #expect(
            Explain.sentence(.setSysctl(key: SysctlKey("eth0", .arpIgnore), from: 0, to: 1), e)
                == "setting net.ipv4.conf.eth0.arp_ignore to 1: the kernel said Permission denied; run rsagent as root (it needs CAP_NET_ADMIN)"
        )
    }

    @Test func netlinkErrorKeepsErrnoCodeAndExtack() {
        let e = NetlinkError(
            operation: "ip addr del 192.0.2.1/32 dev lo", errno: EADDRNOTAVAIL, libnlCode: 3,
            extack: "ipv4: Address not found")
        #expect(
            e.description
                == "ip addr del 192.0.2.1/32 dev lo: Cannot assign requested address: ipv4: Address not found (EADDRNOTAVAIL, libnl 3)"
        )
    }
}

@Suite struct MessageTests {
    /// RTM_NEWADDR for 192.0.2.10/32 on ifindex 1 with label lo:rs and IFA_PROTO 0x52, byte by byte.
    @Test func addAddressMessageCarriesTheOwnerMark() throws {
        let bytes = try RouteSocket.addAddressMessageBytes(
            AddressRequest(
                index: .init(rawValue: 1), device: "lo", address: IPAddress("192.0.2.10")!, label: "lo:rs"))
        // nlmsghdr: type RTM_NEWADDR (20), flags REQUEST? no: CREATE|EXCL (0x400|0x200), seq/pid 0
        #expect(Array(bytes[4..<6]) == [20, 0])
        #expect(UInt16(bytes[6]) | UInt16(bytes[7]) << 8 == 0x600)
        // ifaddrmsg: family AF_INET, prefix 32, flags 0, scope 0, index 1
        #expect(Array(bytes[16..<24]) == [2, 32, 0, 0, 1, 0, 0, 0])
        let attrs = parseTLVs(Array(bytes[24...]))
        #expect(attrs[2] == [192, 0, 2, 10])  // IFA_LOCAL
        #expect(attrs[3] == Array("lo:rs".utf8) + [0])  // IFA_LABEL
        #expect(attrs[11] == [0x52])  // IFA_PROTO
        #expect(Int(bytes[0]) | Int(bytes[1]) << 8 == bytes.count)
    }

    @Test func ipv6AddIsNoDAD() throws {
        let bytes = try RouteSocket.addAddressMessageBytes(
            AddressRequest(
                index: .init(rawValue: 1), device: "lo", address: IPAddress("2001:db8::1")!))
        #expect(bytes[16] == 10 && bytes[17] == 128)  // AF_INET6, /128
        let attrs = parseTLVs(Array(bytes[24...]))
        #expect(attrs[11] == [0x52])
        let flags = attrs[8].map { UInt32($0[0]) | UInt32($0[1]) << 8 } ?? UInt32(bytes[18])
        #expect(flags & 0x02 != 0)  // IFA_F_NODAD
    }

    func parseTLVs(_ b: [UInt8]) -> [Int: [UInt8]] {
        var out: [Int: [UInt8]] = [:]
        var i = 0
        while i + 4 <= b.count {
            let len = Int(b[i]) | Int(b[i + 1]) << 8
            let type = Int(b[i + 2]) | Int(b[i + 3]) << 8
            guard len >= 4, i + len <= b.count else { break }
            out[type] = Array(b[(i + 4)..<(i + len)])
            i += (len + 3) & ~3
        }
        return out
    }
}

@Suite struct IdempotenceTests {
    @Test func removingAnAddressThatIsAlreadyGoneCountsAsDone() {
        final class GoneHost: HostSystem {
            let inner = FakeHost(sampleHost())
            func observe() throws -> HostState { try inner.observe() }
            func createDevice(name: String, kind: String) throws {}
            func deleteDevice(name: String) throws {}
            func setLink(name: String, up: Bool) throws {}
            func setAlias(name: String, alias: String) throws {}
            func ensureTunnelDevice(name: String, kind: String) throws -> Bool { false }
            func createOwnTunnel(_ tunnel: OwnTunnel) throws {}
            func setTunnelMode(name: String, proto: Int) throws {}
            func addFOUPort(_ port: FOUPort) throws {}
            func deleteFOUPort(_ port: FOUPort) throws {}
            func replaceMSSClamp(_ ruleset: MSSRuleset) throws {}
            func removeMSSClamp() throws {}
            func addAddress(_ ip: IPAddress, prefix: Int, device: String, replace: Bool) throws {}
            func deleteAddress(_ ip: IPAddress, prefix: Int, device: String) throws {
                throw NetlinkError(
                    operation: "ip addr del", errno: EADDRNOTAVAIL, libnlCode: 3, extack: "ipv4: Address not found")
            }
            func readSysctl(_ key: SysctlKey) throws -> Int? { nil }
            func writeSysctl(_ key: SysctlKey, _ value: Int) throws {}
        }
        let store = StateStore(directory: NSTemporaryDirectory() + "rsagent-test-\(UUID().uuidString)")
        let report = Executor(host: GoneHost(), store: store, state: AgentState())
            .apply([.removeAddress(IPAddress("192.0.2.1")!, prefix: 32, device: "lo")])
        #expect(report.outcome == .converged)
    }
}

@Suite struct IPv6ExplainTests {
    @Test func disabledIPv6IsNamedNotBlamedOnPermissions() {
        let e = NetlinkError(
            operation: "ip addr add", errno: EACCES, libnlCode: 12, extack: "IPv6: IPv6 is disabled on this device")
        let s = Explain.sentence(.addAddress(IPAddress("2001:db8::1")!, device: "lo"), e)
        #expect(s.contains("IPv6 is disabled on lo (net.ipv6.conf.lo.disable_ipv6=1)"))
        #expect(s.contains("disable_ipv6=0"))
        #expect(!s.contains("root"))
        let noV6 = NetlinkError(operation: "ip addr add", errno: EAFNOSUPPORT, libnlCode: 0)
        #expect(
            Explain.sentence(.addAddress(IPAddress("2001:db8::1")!, device: "lo"), noV6).contains(
                "kernel lacks IPv6 support"))
    }
}
