import Testing

@testable import RSAgent

/// Which devices, FOU ports and rp_filter values each LVS-Tun encapsulation needs, for every
/// type × VIP family × outer family (KERNEL-FACTS.md, "LVS-Tun encapsulations").
struct DecapsulationTests {
    func plan(
        _ types: [TunnelType], outer: [IPFamily], vips: Set<IPFamily>, on device: String = "lo", port: Int? = nil
    ) -> Decapsulation {
        Decapsulation(types: types, outer: outer, vipFamilies: vips, vipDevice: device, port: port)
    }

    @Test func eachTypeByVIPAndOuterFamily() {
        // (type, outer, VIP family) → (device, module)
        let table: [(TunnelType, IPFamily, IPFamily, String, String)] = [
            (.ipip, .ipv4, .ipv4, "tunl0", "ipip"), (.ipip, .ipv4, .ipv6, "sit0", "sit"),
            (.ipip, .ipv6, .ipv4, "ip6tnl0", "ip6_tunnel"), (.ipip, .ipv6, .ipv6, "ip6tnl0", "ip6_tunnel"),
            (.gue, .ipv4, .ipv4, "tunl0", "ipip"), (.gue, .ipv4, .ipv6, "sit0", "sit"),
            (.gue, .ipv6, .ipv4, "ip6tnl0", "ip6_tunnel"), (.gue, .ipv6, .ipv6, "ip6tnl0", "ip6_tunnel"),
            (.gre, .ipv4, .ipv4, "gre0", "ip_gre"), (.gre, .ipv4, .ipv6, "gre0", "ip_gre"),
            (.gre, .ipv6, .ipv4, "ip6gre0", "ip6_gre"), (.gre, .ipv6, .ipv6, "ip6gre0", "ip6_gre"),
        ]
        for (type, outer, vip, device, module) in table {
            let p = plan([type], outer: [outer], vips: [vip], port: type == .gue ? 6080 : nil)
            #expect(p.devices.map(\.name) == [device], "\(type) \(outer) \(vip)")
            #expect(p.devices.first?.module == module && p.devices.first?.outer == outer)
            #expect(p.fouPorts == (type == .gue ? [FOUPort(port: 6080, family: outer)] : []), "\(type) \(outer)")
            // 4in6 needs ip6tnl0 in mode any; nothing else changes a device's mode.
            #expect(p.devices.first?.needsAnyMode == (device == "ip6tnl0" && vip == .ipv4))
            // IPv6 inner packets are never reverse-path filtered; IPv4 ones on a device without
            // the VIPs need 0 there and on `all`.
            #expect(p.rpFilter == (vip == .ipv4 ? [device: 0] : [:]) && p.allOff == (vip == .ipv4))
        }
    }

    @Test func todaysTunl0ProfileNeedsOnlyLooseOnTunl0() {
        let p = plan([.ipip], outer: [.ipv4], vips: [.ipv4], on: "tunl0")
        #expect(p.devices.map(\.name) == ["tunl0"] && p.rpFilter == ["tunl0": 2] && !p.allOff)
    }

    @Test func mixedFamiliesAndSeveralTypesAtOnce() {
        // A director migrating from ipip to GUE, over both families, with both VIP families.
        let p = plan([.ipip, .gue], outer: [.ipv4, .ipv6], vips: [.ipv4, .ipv6], port: 6080)
        #expect(p.devices.map(\.name) == ["sit0", "tunl0", "ip6tnl0"])
        #expect(p.devices.last?.inner == [.ipv4, .ipv6] && p.devices.last?.needsAnyMode == true)
        #expect(p.fouPorts == [FOUPort(port: 6080, family: .ipv4), FOUPort(port: 6080, family: .ipv6)])
        #expect(p.rpFilter == ["tunl0": 0, "ip6tnl0": 0] && p.allOff)
        let gre = plan([.gre], outer: [.ipv4], vips: [.ipv4, .ipv6])
        #expect(gre.devices.count == 1 && gre.devices[0].inner == [.ipv4, .ipv6])
    }

    /// `--tun-csum`: the fallback GRE devices drop checksummed packets, so each facing
    /// interface gets a GRE tunnel of rsagent's own that requires them, in place of gre0/ip6gre0.
    @Test func checksummedGRETakesOwnTunnelsPerFacingInterface() {
        let d = Decapsulation(
            types: [.gre, .ipip], outer: [.ipv4, .ipv6], vipFamilies: [.ipv4], vipDevice: "lo", port: nil, csum: true,
            facing: ["eth0", "eth1"])
        #expect(d.devices.map(\.name) == ["rsgre0", "rsgre1", "tunl0", "ip6tnl0", "rsip6gre0", "rsip6gre1"])
        let own = d.devices.compactMap(\.own)
        #expect(own.map(\.link) == ["eth0", "eth1", "eth0", "eth1"] && own.allSatisfy(\.checksums))
        #expect(own.map(\.kind) == ["gre", "gre", "ip6gre", "ip6gre"])
        #expect(own[0].command == "ip link add rsgre0 type gre dev eth0 icsum")
        #expect(d.devices.first { $0.name == "tunl0" }?.own == nil, "ipip is unaffected")
        // Inner IPv4 arrives on devices without an address: rp_filter 0 on each.
        #expect(d.rpFilter["rsgre1"] == 0 && d.rpFilter["rsip6gre0"] == 0 && d.allOff)
        #expect(OwnTunnel.isOwnName("rsgre12", kind: "gre") && OwnTunnel.isOwnName("rsip6gre0", kind: "ip6gre"))
        #expect(!OwnTunnel.isOwnName("rsgre", kind: "gre") && !OwnTunnel.isOwnName("rsgre0", kind: "ip6gre"))
        #expect(!OwnTunnel.isOwnName("gre0", kind: "gre") && !OwnTunnel.isOwnName("rsgre0x", kind: "gre"))
    }

    /// ip6tnl's mode: which of any / ip4ip6 / ip6ip6 takes what the VIPs need.
    @Test func ip6tnlModeTakesTheInnerFamilies() {
        let both = plan([.ipip], outer: [.ipv6], vips: [.ipv4, .ipv6]).devices[0]
        #expect(both.takes(proto: 0) && !both.takes(proto: 4) && !both.takes(proto: 41))
        let v4 = plan([.ipip], outer: [.ipv6], vips: [.ipv4]).devices[0]
        #expect(v4.takes(proto: 0) && v4.takes(proto: 4) && !v4.takes(proto: 41) && v4.needsAnyMode)
        #expect(DecapDevice.modeName(0) == "any" && DecapDevice.modeName(41) == "ip6ip6")
    }

    @Test func overheadForTheMTUAdvice() {
        #expect(Decapsulation.overhead(.ipip, outer: .ipv4) == 20)
        #expect(Decapsulation.overhead(.ipip, outer: .ipv6) == 40)
        #expect(Decapsulation.overhead(.gre, outer: .ipv4) == 24)
        #expect(Decapsulation.overhead(.gre, outer: .ipv6) == 44)
        #expect(Decapsulation.overhead(.gue, outer: .ipv4) == 32)
        #expect(Decapsulation.overhead(.gue, outer: .ipv6) == 52)
        #expect(Decapsulation.overhead(.gre, outer: .ipv4, csum: true) == 28)
        #expect(TunnelSettings(types: [.gre], outer: [.ipv6], csum: true).largestOverhead.bytes == 48)
    }
}
