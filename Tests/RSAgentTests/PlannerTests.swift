import Netlink
import Testing

@testable import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct PlannerTests {
    let drLo = profile("mode: dr\nvips: [192.0.2.100, '2001:db8::100']\n")

    @Test func freshHostGetsArpBeforeVIPs() {
        let plan = Planner.plan(drLo, host: sampleHost(loUp: false), state: AgentState())
        #expect(plan.conflicts.isEmpty)
        #expect(plan.interfaces == ["eth0"])
        #expect(
            plan.actions == [
                .setLinkUp(name: "lo"),
                .setSysctl(key: SysctlKey("eth0", .arpIgnore), from: 0, to: 1),
                .setSysctl(key: SysctlKey("eth0", .arpAnnounce), from: 0, to: 2),
                .addAddress(IPAddress("192.0.2.100")!, device: "lo"),
                .addAddress(IPAddress("2001:db8::100")!, device: "lo"),
            ])
    }

    @Test func convergedHostPlansNothing() {
        let host = sampleHost(
            extra: [owned("192.0.2.100"), owned("2001:db8::100")],
            sysctls: [SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 2])
        #expect(Planner.plan(drLo, host: host, state: AgentState()).isEmpty)
    }

    @Test func arpValuesAreAFloorAndAllCounts() {
        // all=2 already makes eth0's effective arp_ignore 2 ≥ 1: nothing to write.
        let host = sampleHost(
            extra: [owned("192.0.2.100"), owned("2001:db8::100")],
            sysctls: [SysctlKey("all", .arpIgnore): 2, SysctlKey("all", .arpAnnounce): 2])
        #expect(Planner.plan(drLo, host: host, state: AgentState()).actions.isEmpty)
        // scope all writes `all`, not the interface.
        let p = profile("mode: dr\nvips: [192.0.2.100]\narp: { scope: all }\n")
        let plan = Planner.plan(p, host: sampleHost(extra: [owned("192.0.2.100")]), state: AgentState())
        #expect(
            plan.actions == [
                .setSysctl(key: SysctlKey("all", .arpIgnore), from: 0, to: 1),
                .setSysctl(key: SysctlKey("all", .arpAnnounce), from: 0, to: 2),
            ])
    }

    @Test func rpFilterLooseAndOff() {
        let loose = profile("mode: dr\nvips: [192.0.2.100]\nrp_filter: loose\n")
        let host = sampleHost(
            extra: [owned("192.0.2.100")],
            sysctls: [
                SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 2,
                SysctlKey("all", .rpFilter): 1,
            ])
        #expect(
            Planner.plan(loose, host: host, state: AgentState()).actions == [
                .setSysctl(key: SysctlKey("eth0", .rpFilter), from: 0, to: 2)
            ])
        // off must also lower `all`, or max(all, dev) stays strict.
        let off = profile("mode: dr\nvips: [192.0.2.100]\nrp_filter: off\n")
        var h2 = host
        h2.sysctls[SysctlKey("eth0", .rpFilter)] = 1
        #expect(
            Planner.plan(off, host: h2, state: AgentState()).actions == [
                .setSysctl(key: SysctlKey("eth0", .rpFilter), from: 1, to: 0),
                .setSysctl(key: SysctlKey("all", .rpFilter), from: 1, to: 0),
            ])
    }

    @Test func tunWithoutTunl0LoadsModuleFirst() {
        let p = profile("mode: tun\nvips: [192.0.2.110]\n")
        let plan = Planner.plan(p, host: sampleHost(), state: AgentState())
        #expect(
            Array(plan.actions.prefix(2)) == [
                .loadTunnelModule(device: "tunl0", kind: "ipip"), .setLinkUp(name: "tunl0"),
            ])
        #expect(plan.actions.contains(.setSysctl(key: SysctlKey("tunl0", .rpFilter), from: nil, to: 2)))
        #expect(plan.actions.contains(.setSysctl(key: SysctlKey("eth0", .rpFilter), from: 0, to: 2)))
        #expect(plan.actions.last == .addAddress(IPAddress("192.0.2.110")!, device: "tunl0"))
    }

    @Test func foreignVIPOnDeviceIsAConflictUnlessAdopted() {
        let host = sampleHost(extra: [foreign("192.0.2.100")])
        let plan = Planner.plan(drLo, host: host, state: AgentState())
        #expect(plan.conflicts.map(\.id) == ["vip.foreign"])
        #expect(plan.conflicts[0].message.contains("--adopt"))
        let adopted = Planner.plan(drLo, host: host, state: AgentState(), options: .init(adopt: true))
        #expect(adopted.conflicts.isEmpty)
        #expect(adopted.actions.contains(.adoptAddress(IPAddress("192.0.2.100")!, prefix: 32, device: "lo")))
    }

    @Test func vipOnAnotherDeviceIsAConflictAndNeverRemoved() {
        let host = sampleHost(extra: [foreign("192.0.2.100", on: 2, prefix: 32)])
        let plan = Planner.plan(drLo, host: host, state: AgentState(), options: .init(adopt: true))
        #expect(plan.conflicts.map(\.id) == ["vip.elsewhere"])
        #expect(plan.conflicts[0].message.contains("eth0"))
        #expect(!plan.conflicts[0].message.contains("ip addr del"))
        #expect(!plan.actions.contains { if case .removeAddress = $0 { true } else { false } })
    }

    /// Issue 13, point 6: a VIP equal to this host's own address (its RIP, a /24 on eth0) is
    /// said to be exactly that; the fix is the profile, never deleting the address (which would
    /// take the primary address and the default route with it).
    @Test func aVIPThatIsTheHostsOwnAddressNeverSuggestsDeletingIt() {
        let host = sampleHost(extra: [foreign("192.0.2.100", on: 2, prefix: 24)])
        let plan = Planner.plan(drLo, host: host, state: AgentState())
        #expect(plan.conflicts.map(\.id) == ["vip.own_address"])
        #expect(plan.conflicts[0].message.contains("this host's own address (192.0.2.100/24 on eth0)"))
        #expect(plan.conflicts[0].message.contains("fix the VIP in the profile"))
        #expect(!plan.conflicts[0].message.contains("ip addr del"))
        // Nor does any other conflict suggest deleting what rsagent does not own.
        let foreignOnLo = Planner.plan(drLo, host: sampleHost(extra: [foreign("192.0.2.100")]), state: AgentState())
        #expect(foreignOnLo.conflicts.allSatisfy { !$0.message.contains("addr del") })
    }

    @Test func sameAddressOnTwoDevicesIsSeenOnBoth() {
        // Owned on lo (fine) and, foreign, on eth0 (a conflict); and owned on eth0 only once moved.
        let host = sampleHost(extra: [owned("192.0.2.100"), foreign("192.0.2.100", on: 2, prefix: 32)])
        let plan = Planner.plan(drLo, host: host, state: AgentState())
        #expect(plan.conflicts.map(\.id) == ["vip.elsewhere"])
        #expect(!plan.actions.contains(.addAddress(IPAddress("192.0.2.100")!, device: "lo")))
        let moved = sampleHost(extra: [owned("192.0.2.100", on: 2), owned("192.0.2.100")])
        let p2 = Planner.plan(drLo, host: moved, state: AgentState())
        #expect(p2.conflicts.isEmpty)
        #expect(p2.actions.contains(.removeAddress(IPAddress("192.0.2.100")!, prefix: 32, device: "eth0")))
        #expect(!p2.actions.contains(.addAddress(IPAddress("192.0.2.100")!, device: "lo")))
    }

    @Test func staleOwnedAddressesAreRemovedAfterAdds() {
        let host = sampleHost(
            extra: [owned("192.0.2.100"), owned("192.0.2.200"), foreign("192.0.2.201")],
            sysctls: [SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 2])
        let plan = Planner.plan(drLo, host: host, state: AgentState())
        #expect(
            plan.actions == [
                .addAddress(IPAddress("2001:db8::100")!, device: "lo"),
                .removeAddress(IPAddress("192.0.2.200")!, prefix: 32, device: "lo"),
            ])
    }

    @Test func movingVIPsToADummyCreatesItFirstAndRemovesOldOnesLast() {
        let p = profile("mode: dr\ndevice: dummy\nvips: [192.0.2.100]\n")
        let host = sampleHost(
            extra: [owned("192.0.2.100")],
            sysctls: [SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 2])
        let plan = Planner.plan(p, host: host, state: AgentState())
        #expect(
            plan.actions == [
                .createDevice(name: "lvs0", kind: "dummy"), .setLinkUp(name: "lvs0"),
                .addAddress(IPAddress("192.0.2.100")!, device: "lvs0"),
                .removeAddress(IPAddress("192.0.2.100")!, prefix: 32, device: "lo"),
            ])
    }

    @Test func dummyOwnershipComesFromStateOrAlias() {
        let p = profile("mode: dr\ndevice: dummy\nvips: [192.0.2.100]\n")
        var host = sampleHost()
        host.links.append(Link(index: .init(rawValue: 3), name: "lvs0", kind: "dummy", isUp: true))
        #expect(Planner.plan(p, host: host, state: AgentState()).conflicts.map(\.id) == ["device.foreign"])
        var st = AgentState(); st.devices = ["lvs0"]
        #expect(Planner.plan(p, host: host, state: st).conflicts.isEmpty)
        host.links[2].alias = ownerAlias
        #expect(Planner.plan(p, host: host, state: AgentState()).conflicts.isEmpty)
        host.links[2].kind = "veth"
        #expect(Planner.plan(p, host: host, state: st).conflicts.first?.message.contains("a veth device") == true)
    }

    @Test func staleDeviceFromAnEarlierProfileIsDeleted() {
        var host = sampleHost(
            extra: [owned("192.0.2.100")],
            sysctls: [SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 2])
        host.links.append(Link(index: .init(rawValue: 3), name: "old0", kind: "dummy"))
        var st = AgentState(); st.devices = ["old0"]
        let plan = Planner.plan(profile("mode: dr\nvips: [192.0.2.100]\n"), host: host, state: st)
        #expect(plan.actions == [.deleteDevice(name: "old0", kind: "dummy")])
    }

    /// A name in the state file now held by a device of another kind (ours was deleted by hand
    /// and someone made a VLAN of that name) is not deleted by `apply`, as `down` never did.
    @Test func aStaleDeviceNameNowHeldByAnotherKindIsLeftAlone() {
        var host = sampleHost(
            extra: [owned("192.0.2.100")],
            sysctls: [SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 2])
        host.links.append(Link(index: .init(rawValue: 3), name: "old0", kind: "vlan"))
        var st = AgentState(); st.devices = ["old0"]
        #expect(Planner.plan(profile("mode: dr\nvips: [192.0.2.100]\n"), host: host, state: st).actions == [])
        #expect(Planner.planDown(host: host, state: st).actions.isEmpty == false)
        #expect(!Planner.planDown(host: host, state: st).actions.contains { $0.kind == "delete_device" })
    }

    @Test func interfacesMustExistAndBeKnowable() {
        let p = profile("mode: dr\ninterfaces: [eth9]\nvips: [192.0.2.100]\n")
        let plan = Planner.plan(p, host: sampleHost(), state: AgentState())
        #expect(plan.conflicts.map(\.id) == ["interface.missing"])
        #expect(plan.conflicts[0].message.contains("it has: eth0"))
        var noRoute = sampleHost(); noRoute.defaultRouteInterface = nil
        let p2 = Planner.plan(drLo, host: noRoute, state: AgentState())
        #expect(p2.conflicts.map(\.id) == ["interface.unknown"])
    }

    @Test func downRemovesOnlyOwnedAndRestoresOnlyUntouchedSysctls() {
        var host = sampleHost(
            loUp: true, extra: [owned("192.0.2.100"), foreign("192.0.2.1"), owned("2001:db8::1", on: 2)],
            sysctls: [SysctlKey("eth0", .arpIgnore): 1, SysctlKey("eth0", .arpAnnounce): 1])
        host.links.append(Link(index: .init(rawValue: 3), name: "lvs0", kind: "dummy"))
        host.addresses.append(owned("192.0.2.50", on: 3))
        var st = AgentState()
        st.sysctls = [
            "net.ipv4.conf.eth0.arp_ignore": .init(original: 0, written: 1),
            "net.ipv4.conf.eth0.arp_announce": .init(original: 0, written: 2),
        ]
        st.devices = ["lvs0"]
        st.linksSetUp = ["lo"]
        let plan = Planner.planDown(host: host, state: st)
        #expect(
            plan.actions == [
                .removeAddress(IPAddress("192.0.2.100")!, prefix: 32, device: "lo"),
                .removeAddress(IPAddress("2001:db8::1")!, prefix: 128, device: "eth0"),
                .deleteDevice(name: "lvs0", kind: "dummy"),
                .restoreSysctl(key: SysctlKey("eth0", .arpIgnore), from: 1, to: 0),
                .setLinkDown(name: "lo"),
            ])
        #expect(plan.warnings.count == 1)
        #expect(plan.warnings[0].contains("arp_announce was changed by someone else"))
    }
}

@Suite struct SysctlTests {
    @Test func effectiveIsMaxOfAllAndDevice() {
        #expect(effectiveSysctl(all: 0, device: 1) == 1)
        #expect(effectiveSysctl(all: 2, device: 1) == 2)
        #expect(effectiveSysctl(all: nil, device: nil) == 0)
        var h = HostState()
        h.sysctls = [SysctlKey("all", .rpFilter): 1, SysctlKey("eth0", .rpFilter): 2]
        #expect(h.effective(SysctlKey("eth0", .rpFilter)) == 2)
        #expect(h.effective(SysctlKey("eth1", .rpFilter)) == 1)
    }

    @Test func keysRoundTripEvenWithDotsInNames() {
        let k = SysctlKey("eth0.100", .arpIgnore)
        #expect(k.description == "net.ipv4.conf.eth0.100.arp_ignore")
        #expect(k.procPath == "/proc/sys/net/ipv4/conf/eth0.100/arp_ignore")
        #expect(SysctlKey(parsing: k.description) == k)
        #expect(SysctlKey(parsing: "net.ipv4.conf.eth0.forwarding") == nil)
        #expect(SysctlKey(parsing: "net.ipv6.conf.eth0.arp_ignore") == nil)
    }

    /// The kernel takes arp_ignore=99 and reads it back, so the writer refuses it first: through
    /// the real writer, on an interface that does not exist — an in-range value then fails on
    /// the missing file (ENOENT), an out-of-range one before the file is opened (EINVAL).
    @Test func rangesAreCheckedBeforeWriting() throws {
        let host = try KernelHost()
        func failure(_ name: SysctlName, _ value: Int) -> SystemError? {
            do {
                try host.writeSysctl(SysctlKey("rsagent-none0", name), value)
                return nil
            } catch { return error as? SystemError }
        }
        for (name, bad, good) in [(SysctlName.arpIgnore, 99, 1), (.arpAnnounce, 3, 2), (.rpFilter, -1, 2)] {
            let refused = failure(name, bad)
            #expect(refused?.errno == EINVAL, "\(name)=\(bad)")
            #expect(refused?.reason.contains("outside the values the kernel gives meaning to") == true)
            #expect(failure(name, good)?.errno == ENOENT, "\(name)=\(good)")
        }
    }
}
