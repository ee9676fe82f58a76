import GoldenFiles
import Netlink
import Testing

@testable import RSAgent

/// The documents the daemon serves and keeps, from fixed values, byte for byte against
/// `Tests/Golden` (the command outputs are checked the same way in NamespaceTests/GoldenTests).
@Suite struct GoldenDocumentTests {
    func expectGolden(_ name: String, _ text: String) {
        let problem = Golden.compare(name, text)
        #expect(problem == nil, "\(problem ?? "")")
    }

    @Test func loadReports() throws {
        expectGolden("load", try JSON.encode(sampleReport(), pretty: true))
        expectGolden("load-drain", try JSON.encode(sampleReport(admin: .drain), pretty: true))
        var notConverged = sampleReport()
        notConverged = notConverged.serving(health("VIP 192.0.2.100 is also on eth0"))
        expectGolden("load-not-converged", try JSON.encode(notConverged, pretty: true))
    }

    @Test func testServiceAnswerAndProbe() throws {
        let a = TestAnswer(
            host: "rs1", rip: "10.0.0.11", local: "192.0.2.100:31337", client: "198.51.100.7:40312", mode: "dr")
        let b = TestAnswer(
            host: "rs2", rip: "10.0.0.12", local: "192.0.2.100:31337", client: "198.51.100.7:40313", mode: "dr")
        expectGolden("test-answer", a.json)
        let probe = ProbeResult(
            target: "192.0.2.100:31337", attempts: 4, answers: [a, b, a],
            failures: ["connecting to 192.0.2.100:31337: Connection refused"])
        expectGolden("probe", try JSON.encode(probe, pretty: true))
    }

    @Test func daemonAndStateFiles() throws {
        var daemon = DaemonStatus(pid: 4242, startedAt: "2026-12-03T10:00:00Z", profile: "/etc/rsagent/rsagent.yaml")
        daemon.repairs = 2
        daemon.lastRepairAt = "2026-12-03T10:05:00Z"
        daemon.lastRepair = "192.0.2.100 on lo (removed by pid 77, ip)"
        daemon.notConverged = nil
        expectGolden("daemon-status", try JSON.encode(daemon, pretty: true))
        var state = AgentState()
        state.sysctls["net.ipv4.conf.eth0.arp_ignore"] = .init(original: 0, written: 1)
        state.sysctls["net.ipv4.conf.eth0.arp_announce"] = .init(original: 0, written: 2)
        state.devices = ["lvs0"]
        expectGolden("state", try JSON.encode(state, pretty: true))
    }
}
