import Foundation
import Netlink
import Testing

@testable import RSAgent

@Suite struct LabTests {
    @Test func builtInProfileIsTheShippedOneAndValid() throws {
        let shipped = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
                "../../profiles/lab.yaml"), encoding: .utf8)
        #expect(LabProfile.yaml(stateDir: LabProfile.shippedStateDir) == shipped)
        let p = try ProfileDecoder.decode(LabProfile.yaml(stateDir: "/tmp/rsagent-lab-1/rs1"), file: "lab.yaml")
        #expect(p.stateDir == "/tmp/rsagent-lab-1/rs1")
        #expect(p.vips.map(\.address) == [LabNetwork.vip])
        #expect(p.testService?.port == 31337 && p.load?.http?.port == 3334)
    }

    @Test func directorChoice() {
        #expect(LabDirector.choose(ipvsadm: "/usr/sbin/ipvsadm", procIPVS: true, modulePresent: false) == .ipvs)
        #expect(LabDirector.choose(ipvsadm: "/usr/sbin/ipvsadm", procIPVS: false, modulePresent: true) == .ipvs)
        guard case .ecmp(let why) = LabDirector.choose(ipvsadm: nil, procIPVS: true, modulePresent: true) else {
            Issue.record("IPVS without ipvsadm")
            return
        }
        #expect(why.contains("ipvsadm is not installed"))
        guard case .ecmp(let kernel) = LabDirector.choose(ipvsadm: "/x", procIPVS: false, modulePresent: false) else {
            Issue.record("IPVS without ip_vs")
            return
        }
        #expect(kernel.contains("no ip_vs"))
    }

    @Test func arpingOutputOfBothImplementations() {
        let habets = """
            ARPING 192.0.2.100
            60 bytes from 02:aa:bb:cc:dd:01 (192.0.2.100): index=0 time=1.2 msec
            60 bytes from 02:AA:BB:CC:DD:01 (192.0.2.100): index=1 time=1.1 msec

            --- 192.0.2.100 statistics ---
            2 packets transmitted, 2 packets received,   0% unanswered (0 extra)
            """
        #expect(arpResponders(habets) == ["02:aa:bb:cc:dd:01"])
        let iputils = """
            ARPING 192.0.2.100 from 10.77.0.1 eth0
            Unicast reply from 192.0.2.100 [02:AA:BB:CC:DD:02]  0.9ms
            Unicast reply from 192.0.2.100 [02:AA:BB:CC:DD:03]  1.0ms
            Sent 2 probes (1 broadcast(s))
            """
        #expect(arpResponders(iputils) == ["02:aa:bb:cc:dd:02", "02:aa:bb:cc:dd:03"])
        #expect(arpResponders("Timeout\n2 packets transmitted, 0 packets received, 100% unanswered") == [])
    }

    @Test func arpVerdicts() {
        let names = ["d0:00:00:00:00:02": "director", "d0:00:00:00:00:11": "rs1"]
        let ecmp = LabDirector.ecmp(reason: "x")
        #expect(arpVerdict(responders: [], names: names, director: ecmp).pass)
        #expect(!arpVerdict(responders: ["d0:00:00:00:00:11"], names: names, director: ecmp).pass)
        #expect(
            arpVerdict(responders: ["d0:00:00:00:00:11"], names: names, director: ecmp).text.contains("ARP problem"))
        #expect(arpVerdict(responders: ["d0:00:00:00:00:02"], names: names, director: .ipvs).pass)
        #expect(!arpVerdict(responders: [], names: names, director: .ipvs).pass)
        #expect(
            !arpVerdict(responders: ["d0:00:00:00:00:02", "d0:00:00:00:00:11"], names: names, director: .ipvs).pass)
    }

    /// The lab's director: an agent's weight while it is ready, 0 otherwise; the ECMP route
    /// leaves out a realserver at 0 and changes only for a real change (every change re-hashes
    /// flows), IPVS follows every change.
    @Test func theLabDirectorsWeights() {
        let a = IPAddress("10.77.0.11")!, b = IPAddress("10.77.0.12")!
        let ready = LabWeights([("rs1", a, .ready(85)), ("rs2", b, .ready(80))])
        #expect(ready.nexthops.map(\.1) == [85, 80])
        let drained = LabWeights([("rs1", a, .drain), ("rs2", b, .ready(80))])
        #expect(drained.nexthops.map(\.0) == [b])
        #expect(drained.summary == "rs1 10.77.0.11 weight 0 (drain), rs2 10.77.0.12 weight 80")
        let gone = LabWeights([("rs1", a, nil), ("rs2", b, .down("no VIP"))])
        #expect(gone.nexthops.isEmpty && gone.summary.contains("(unreachable)") && gone.summary.contains("(down)"))
        #expect(ready.differs(from: nil, ecmp: true))
        #expect(drained.differs(from: ready, ecmp: true) && drained.differs(from: ready, ecmp: false))
        let wiggle = LabWeights([("rs1", a, .ready(90)), ("rs2", b, .ready(80))])
        #expect(!wiggle.differs(from: ready, ecmp: true), "5 points: the ECMP route stays")
        #expect(wiggle.differs(from: ready, ecmp: false), "IPVS follows")
        #expect(LabWeights([("rs1", a, .ready(95)), ("rs2", b, .ready(80))]).differs(from: ready, ecmp: true))
    }
}
