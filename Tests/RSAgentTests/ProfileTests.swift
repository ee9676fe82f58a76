import Foundation
import Netlink
import Testing

@testable import RSAgent

@Suite struct ProfileDecodingTests {
    static let profilesDir: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("profiles").path
    }()

    @Test(arguments: ["dr-lo", "dr-dummy", "tun", "tun-gue", "tun-ipv6", "tun-gre-csum", "multi-vip", "staging", "lab"])
    func shippedProfilesAreValid(_ name: String) throws {
        let p = try ProfileDecoder.load(path: "\(Self.profilesDir)/\(name).yaml")
        #expect(!p.vips.isEmpty)
        #expect(p.stateDir.hasPrefix("/var/lib/rsagent"))
        #expect(p.initialState == (name == "staging" ? .drain : .ready))
    }

    @Test func defaultsPerMode() throws {
        let dr = try ProfileDecoder.decode("mode: dr\nvips: [192.0.2.1]\n")
        #expect(dr.device == .lo && dr.deviceName == "lo")
        #expect(dr.arp == ARPSettings(ignore: 1, announce: 2, scope: .interfaces))
        #expect(dr.rpFilter == .leave)
        #expect(dr.interfaces == nil)
        #expect(dr.onStop == .keep)
        let tun = try ProfileDecoder.decode("mode: tun\nvips: [192.0.2.1]\n")
        #expect(tun.device == .tunl0 && tun.deviceName == "tunl0")
        #expect(tun.rpFilter == .loose)
        #expect(tun.tunnel == TunnelSettings(types: [.ipip], outer: [.ipv4]), "today's tun profiles: ipip over IPv4")
        // Several encapsulations, both outer families, VIPs of both families on lo.
        let mixed = try ProfileDecoder.decode(
            "mode: tun\ndevice: lo\ntunnel: { type: [gue, gre], port: 6080, outer: [ipv4, ipv6], csum: false, mss: off }\n"
                + "vips: ['2001:db8::1']\n")
        #expect(mixed.tunnel == TunnelSettings(types: [.gue, .gre], port: 6080, outer: [.ipv4, .ipv6]))
        #expect(mixed.decapsulation(facing: ["eth0"])?.devices.map(\.name) == ["gre0", "sit0", "ip6gre0", "ip6tnl0"])
        #expect(
            mixed.decapsulation(facing: ["eth0"])?.fouPorts.map(\.description) == [
                "6080 gue (IPv4)", "6080 gue (IPv6)",
            ])
        let dummy = try ProfileDecoder.decode("mode: dr\ndevice: dummy\nvips: [192.0.2.1]\n")
        #expect(dummy.deviceName == "lvs0")
    }

    @Test func fullProfileDecodes() throws {
        let p = try ProfileDecoder.decode(
            """
            mode: dr
            device: dummy
            device_name: vip0
            interfaces: [eth0, eth1]
            vips:
              - 192.0.2.100/32
              - address: 2001:db8::100
                services: [tcp/80, udp/53]
            arp: { ignore: 2, announce: 2, scope: all }
            rp_filter: off
            load:
              http: 0.0.0.0:3334
              agent_check: "[::]:3333"
              allow: [192.0.2.0/24, 2001:db8::/64]
              weight: { max: 80, min: 5 }
              interval: 0.5
              smoothing: 4
              hysteresis: 5
              thresholds: { cpu: 80, load: 1.5, memory: 90, connections: 5000 }
            test_service: { port: 31337, http_port: 31380 }
            state_dir: /srv/rsagent
            on_stop: remove
            """)
        #expect(p.deviceName == "vip0")
        #expect(p.interfaces == ["eth0", "eth1"])
        #expect(p.vips.map(\.address.description) == ["192.0.2.100", "2001:db8::100"])
        #expect(p.vips[1].services.map(\.description) == ["tcp/80", "udp/53"])
        #expect(p.arp.scope == .all && p.arp.ignore == 2)
        #expect(p.rpFilter == .off)
        #expect(p.load?.agentCheck?.description == "[::]:3333")
        #expect(p.load?.allow.count == 2 && p.load?.weightMax == 80 && p.load?.weightMin == 5)
        #expect(p.load?.interval == 0.5 && p.load?.smoothing == 4 && p.load?.hysteresis == 5)
        #expect(p.load?.thresholds == LoadThresholds(cpu: 80, load: 1.5, memory: 90, connections: 5000))
        #expect(p.testService?.httpPort == 31380)
        #expect(p.stateDir == "/srv/rsagent" && p.onStop == .remove)
    }

    /// (profile text, expected "line:column", a fragment of the message)
    static let badInputs: [(String, String, String)] = [
        ("", "1:1", "must be a YAML mapping"),
        ("- a\n- b\n", "1:1", "must be a YAML mapping"),
        ("mode: dr\nvips: [192.0.2.1\n", "3:1", "not valid YAML"),
        ("vips: [192.0.2.1]\n", "1:1", "`mode:` is missing"),
        ("mode: dr\n", "1:1", "`vips:` is missing"),
        ("mode: direct\nvips: [192.0.2.1]\n", "1:7", "mode `direct` is not one of: dr, tun"),
        ("mode: dr\nvips: [192.0.2.1]\nvip: [192.0.2.2]\n", "3:1", "did you mean `vips`"),
        ("mode: dr\nvips: [192.0.2.1]\ncolour: red\n", "3:1", "unknown key `colour`"),
        ("mode: dr\nvips: []\n", "2:7", "`vips:` is empty"),
        ("mode: dr\nvips: 192.0.2.1\n", "2:7", "must be a list"),
        ("mode: dr\nvips: [192.0.2.300]\n", "2:8", "not an IPv4 or IPv6 address"),
        ("mode: dr\nvips: [www.example.com]\n", "2:8", "not an IPv4 or IPv6 address"),
        ("mode: dr\nvips: [192.0.2.0/24]\n", "2:8", "must be a single address (/32)"),
        ("mode: dr\nvips: [2001:db8::/64]\n", "2:8", "must be a single address (/128)"),
        ("mode: dr\nvips: [192.0.2.1/x]\n", "2:8", "malformed prefix"),
        ("mode: dr\nvips: [192.0.2.1, 192.0.2.1]\n", "2:19", "listed twice (first on line 2)"),
        ("mode: dr\nvips: [2001:db8::1, '2001:0db8::0001']\n", "2:21", "listed twice"),
        ("mode: dr\nvips: [127.0.0.5]\n", "2:8", "loopback"),
        ("mode: dr\nvips: [0.0.0.0]\n", "2:8", "unspecified"),
        ("mode: dr\nvips: [224.0.0.5]\n", "2:8", "multicast"),
        ("mode: dr\nvips: [255.255.255.255]\n", "2:8", "reserved or broadcast"),
        ("mode: dr\nvips: [169.254.1.1]\n", "2:8", "link-local"),
        ("mode: dr\nvips: ['::1']\n", "2:8", "loopback address ::1"),
        ("mode: dr\nvips: ['fe80::1']\n", "2:8", "link-local"),
        ("mode: dr\nvips: ['ff02::1']\n", "2:8", "multicast"),
        ("mode: dr\nvips: ['::ffff:192.0.2.1']\n", "2:8", "IPv4-mapped"),
        ("mode: tun\ndevice: dummy\nvips: [192.0.2.1]\n", "2:9", "does not work with `mode: tun`"),
        ("mode: dr\ndevice: tunl0\nvips: [192.0.2.1]\n", "2:9", "is for `mode: tun`"),
        ("mode: dr\ndevice: eth0\nvips: [192.0.2.1]\n", "2:9", "not one of: lo, dummy, tunl0"),
        ("mode: tun\nvips: ['2001:db8::1']\n", "2:8", "tunl0 holds IPv4 VIPs only"),
        ("mode: dr\ntunnel: { type: gue, port: 6080 }\nvips: [192.0.2.1]\n", "2:9", "`tunnel:` is for `mode: tun`"),
        ("mode: tun\ntunnel: { type: gue }\nvips: [192.0.2.1]\n", "2:17", "gue needs tunnel.port"),
        ("mode: tun\ntunnel: { type: gre, port: 6080 }\nvips: [192.0.2.1]\n", "2:28", "tunnel.port is GUE's UDP port"),
        ("mode: tun\ntunnel: { type: [ipip, ipip] }\nvips: [192.0.2.1]\n", "2:24", "lists ipip twice"),
        ("mode: tun\ntunnel: { type: vxlan }\nvips: [192.0.2.1]\n", "2:17", "not one of: ipip, gue, gre"),
        ("mode: tun\ntunnel: { type: ipip, csum: true }\nvips: [192.0.2.1]\n", "2:29", "tunnel.csum is for GRE"),
        ("mode: tun\ntunnel: { type: gre, csum: yes }\nvips: [192.0.2.1]\n", "2:28", "must be true or false"),
        ("mode: tun\ntunnel: { mss: 100 }\nvips: [192.0.2.1]\n", "2:16", "must be auto (from the facing MTU"),
        ("mode: tun\ntunnel: { outer: [] }\nvips: [192.0.2.1]\n", "2:18", "must name at least one of: ipv4, ipv6"),
        ("mode: tun\ntunnel: { tpye: gre }\nvips: [192.0.2.1]\n", "2:11", "did you mean `type`?"),
        ("mode: dr\ndevice_name: lvs0\nvips: [192.0.2.1]\n", "2:14", "applies only to `device: dummy`"),
        (
            "mode: dr\ndevice: dummy\ndevice_name: averyveryverylongname\nvips: [192.0.2.1]\n", "3:14",
            "longer than 15 bytes"
        ),
        ("mode: dr\ndevice: dummy\ndevice_name: 'a/b'\nvips: [192.0.2.1]\n", "3:14", "contains '/'"),
        ("mode: dr\ndevice: dummy\ndevice_name: lo\nvips: [192.0.2.1]\n", "3:14", "is a system device"),
        ("mode: dr\ninterfaces: []\nvips: [192.0.2.1]\n", "2:13", "`interfaces:` is empty"),
        ("mode: dr\ninterfaces: [eth0, eth0]\nvips: [192.0.2.1]\n", "2:20", "listed twice"),
        ("mode: dr\ninterfaces: [lo]\nvips: [192.0.2.1]\n", "2:14", "does not face the director"),
        ("mode: dr\ninterfaces: eth0\nvips: [192.0.2.1]\n", "2:13", "must be a list"),
        ("mode: dr\nvips:\n  - services: [tcp/80]\n", "3:5", "has no `address:`"),
        ("mode: dr\nvips:\n  - address: 192.0.2.1\n    ports: [80]\n", "4:5", "unknown key `ports`"),
        ("mode: dr\nvips:\n  - address: 192.0.2.1\n    services: [http]\n", "4:16", "must be PROTO/PORT"),
        ("mode: dr\nvips:\n  - address: 192.0.2.1\n    services: [tcp/0]\n", "4:16", "must be PROTO/PORT"),
        ("mode: dr\nvips:\n  - address: 192.0.2.1\n    services: [sctp/80]\n", "4:16", "must be PROTO/PORT"),
        (
            "mode: dr\nvips:\n  - address: 192.0.2.1\n    services: [tcp/80, tcp/80]\n", "4:24",
            "listed twice for this VIP"
        ),
        ("mode: dr\nvips: [192.0.2.1]\narp: { ignore: 0 }\n", "3:16", "arp.ignore 0 is not allowed"),
        ("mode: dr\nvips: [192.0.2.1]\narp: { ignore: 99 }\n", "3:16", "arp.ignore 99 is not allowed"),
        ("mode: dr\nvips: [192.0.2.1]\narp: { announce: 3 }\n", "3:18", "arp.announce 3 is not allowed"),
        ("mode: dr\nvips: [192.0.2.1]\narp: { ignore: one }\n", "3:16", "must be a whole number"),
        ("mode: dr\nvips: [192.0.2.1]\narp: { scope: everywhere }\n", "3:15", "not one of: interfaces, all"),
        ("mode: dr\nvips: [192.0.2.1]\narp: 1\n", "3:6", "must be a mapping"),
        ("mode: dr\nvips: [192.0.2.1]\nrp_filter: strict\n", "3:12", "not one of: leave, loose, off"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { http: 3334 }\n", "3:15", "must be ADDRESS:PORT"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { http: '0.0.0.0:99999' }\n", "3:15", "must be ADDRESS:PORT"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { allow: [10.0.0.0/33] }\n", "3:17", "not a network"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { weight: { max: 0 } }\n", "3:24", "must be 1–100"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { weight: { max: 10, min: 20 } }\n", "3:17", "above load.weight.max"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { interval: 0 }\n", "3:19", "load.interval 0 must be 0.1–60 seconds"),
        ("mode: dr\nvips: [192.0.2.1]\ninitial_state: maint\n", "3:16", "initial_state maint is not allowed"),
        ("mode: dr\nvips: [192.0.2.1]\ninitial_state: drained\n", "3:16", "is not one of: ready, drain, maint"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { interval: soon }\n", "3:19", "must be a number"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { hysteresis: 80 }\n", "3:21", "must be 0–50 points"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { thresholds: { cpu: 150 } }\n", "3:28", "must be 1–100 percent"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { thresholds: { connections: 0 } }\n", "3:36", "at least 1"),
        ("mode: dr\nvips: [192.0.2.1]\nload: { thresholds: { disk: 90 } }\n", "3:23", "unknown key `disk`"),
        ("mode: dr\nvips: [192.0.2.1]\ntest_service: { port: 70000 }\n", "3:23", "not a port"),
        (
            "mode: dr\nvips: [192.0.2.1]\ntest_service: { port: 31337, http_port: 31337 }\n", "3:41",
            "same as test_service.port"
        ),
        (
            "mode: dr\nvips: [192.0.2.1]\nload: { http: '0.0.0.0:31337' }\ntest_service: { port: 31337 }\n", "4:15",
            "also used by load.http"
        ),
        ("mode: dr\nvips: [192.0.2.1]\nstate_dir: var/lib\n", "3:12", "must be an absolute path"),
        ("mode: dr\nvips: [192.0.2.1]\non_stop: delete\n", "3:10", "not one of: keep, remove"),
        ("mode: dr\nvips: [192.0.2.1]\nmode: tun\n", "3:1", "appears twice"),
        ("mode:\nvips: [192.0.2.1]\n", "1:6", "must be a single value"),
    ]

    @Test(arguments: badInputs.indices)
    func badInputIsReportedWithPosition(_ i: Int) {
        let (text, position, fragment) = Self.badInputs[i]
        do {
            _ = try ProfileDecoder.decode(text, file: "bad.yaml")
            Issue.record("accepted an invalid profile: \(text)")
        } catch let e as ProfileError {
            let match = e.problems.first { $0.message.contains(fragment) }
            #expect(match != nil, "no problem mentions \(fragment): \(e)")
            #expect(match.map { "\($0.line):\($0.column)" } == position, "\(e)")
            #expect(e.description.hasPrefix("bad.yaml:"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func everyProblemIsListedNotJustTheFirst() {
        let text = "mode: tunnel\nvips: [192.0.2.999, 192.0.2.1/24]\narp: { ignore: 0 }\nextra: 1\n"
        #expect(throws: ProfileError.self) { try ProfileDecoder.decode(text) }
        let e =
            (try? ProfileDecoder.decode(text)).map { _ in [ProfileProblem]() }
            ?? {
                do { _ = try ProfileDecoder.decode(text); return [] } catch let e as ProfileError {
                    return e.problems
                } catch { return [] }
            }()
        #expect(e.count == 5)
        #expect(e.map(\.line) == e.map(\.line).sorted())
    }

    @Test func missingFileIsOneSentence() {
        do {
            _ = try ProfileDecoder.load(path: "/nonexistent/rsagent.yaml")
            Issue.record("loaded a missing file")
        } catch let e as ProfileError {
            #expect(e.description.contains("no such file"))
            #expect(e.description.contains("pass an existing file with -c"))
        } catch { Issue.record("\(error)") }
    }

    @Test func endpointsAndNetworks() {
        #expect(Endpoint("0.0.0.0:3334")?.port == 3334)
        #expect(Endpoint("[2001:db8::1]:80")?.host == IPAddress("2001:db8::1"))
        #expect(Endpoint("2001:db8::1:80") == nil)
        #expect(Endpoint("[::]") == nil)
        #expect(CIDR("192.0.2.0/24")?.contains(IPAddress("192.0.2.77")!) == true)
        #expect(CIDR("192.0.2.0/24")?.contains(IPAddress("192.0.3.1")!) == false)
        #expect(CIDR("2001:db8::/32")?.contains(IPAddress("2001:db8:ffff::1")!) == true)
        #expect(CIDR("10.0.0.0/33") == nil)
    }
}

@Suite struct IPAddressTests {
    @Test func parsesAndPrintsLikeIp() {
        #expect(IPAddress("192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("2001:0db8:0000::0001")?.description == "2001:db8::1")
        #expect(IPAddress("192.0.2.1/32") == nil)
        #expect(IPAddress("fe80::1%eth0") == nil)
        #expect(IPAddress("") == nil)
        #expect(IPAddress("1.2.3") == nil)
        #expect(IPAddress("192.0.2.1")!.hostPrefixLength == 32)
        #expect(IPAddress("::1")!.hostPrefixLength == 128)
    }

    @Test func ordersIPv4BeforeIPv6() {
        let sorted = ["2001:db8::1", "192.0.2.10", "192.0.2.9", "10.0.0.1"].compactMap(IPAddress.init).sorted()
        #expect(sorted.map(\.description) == ["10.0.0.1", "192.0.2.9", "192.0.2.10", "2001:db8::1"])
    }
}

@Suite struct AddressTextTests {
    @Test(arguments: ["0.0.0.1", "9.10.99.100", "192.0.2.255", "255.255.255.255", "10.0.0.0"])
    func ipv4PrintsAsWritten(_ s: String) { #expect(IPAddress(s)?.description == s) }

    @Test func ipv6PrintsCompressed() {
        #expect(IPAddress("2001:db8:0:0:0:0:0:1")?.description == "2001:db8::1")
        #expect(IPAddress("::ffff:192.0.2.1")?.description == "::ffff:192.0.2.1")
    }

    @Test func tablesAlign() {
        var t = Table("A", "BB")
        t.add("xyz", "1")
        t.add("x", "22")
        #expect(t.render(indent: "") == "A    BB\nxyz  1\nx    22\n")
    }
}
