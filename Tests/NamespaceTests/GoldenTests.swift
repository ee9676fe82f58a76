import Foundation
import GoldenFiles
import Testing

/// The JSON documents scripts read, byte for byte, from the built binary in a namespace: each
/// command's output is compared with `Tests/Golden/NAME.json`, after replacing what differs from
/// run to run (the namespace's name and state directory; the version, in Golden.compare). A refactor that changes
/// a key, an order or a word fails here. `RSAGENT_GOLDEN_UPDATE=1` rewrites the files (then
/// review the diff: it is a change of the documented interface).
@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct GoldenTests {
    @Test func theCommandsJSONDocumentsStayAsTheyAre() throws {
        let ns = try Namespace()
        let path = try ns.shippedProfile("dr-lo")
        var failures: [String] = []
        func golden(_ name: String, _ args: String..., status: Int32) throws {
            let r = try ns.rsagent(args)
            if r.status != status { failures.append("\(name): exit \(r.status), expected \(status): \(r.stderr)") }
            if let problem = Golden.compare(name, normalised(r.stdout, ns)) { failures.append(problem) }
        }
        try golden("check-unapplied", "check", "-c", path, "--json", status: 1)
        try golden("apply-dry-run", "apply", "-c", path, "--dry-run", "--json", status: 0)
        try golden("apply", "apply", "-c", path, "--json", status: 0)
        try golden("apply-unchanged", "apply", "-c", path, "--json", status: 0)
        try golden("status", "status", "-c", path, "--json", status: 0)
        try golden("check", "check", "-c", path, "--json", status: 0)
        // Someone changes the host by hand: status names the drift.
        try ns.sh("addr del 192.0.2.100/32 dev lo")
        try ns.setSysctl("veth0/arp_ignore", 0)
        try golden("status-drift", "status", "-c", path, "--json", status: 3)
        try #require(try ns.rsagent("apply", "-c", path).status == 0)
        // A VIP that is the host's own address: a conflict, nothing run.
        let own = try ns.profile("mode: dr\nvips: [10.99.0.2]\ninterfaces: [veth0]\n")
        try golden("apply-conflict", "apply", "-c", own, "--json", status: 2)
        // A profile error: the error document with line and column.
        let bad = ns.stateDir + "-bad.yaml"
        try "mode: dr\nvips: [10.99.0.300]\n".write(toFile: bad, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: bad) }
        try golden("error-profile", "apply", "-c", bad, "--json", status: 2)
        try golden("down", "down", "-c", path, "--json", status: 0)
        try golden("down-unchanged", "down", "-c", path, "--json", status: 0)
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    func normalised(_ text: String, _ ns: Namespace) -> String {
        text.replacingOccurrences(of: ns.stateDir, with: "$STATE_DIR").replacingOccurrences(of: ns.name, with: "$NETNS")
    }
}
