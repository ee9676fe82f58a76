import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.enabled(if: Env.canRun, Env.skipReason), .serialized)
struct LabCommandTests {
    /// `rsagent lab` end to end: namespaces, agents, director, probe, ARP, weights, teardown.
    @Test func labShowsBothRealserversAnsweringAndRemovesEverything() throws {
        let r = try execute(Env.binary, ["lab", "-n", "20"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(
            r.stdout.contains("rs1         10.77.0.11") && r.stdout.contains("rs2         10.77.0.12"), "\(r.stdout)")
        #expect(r.stdout.contains("192.0.2.100:31337  dr"))
        #expect(r.stdout.contains("pass: both realservers answered for the VIP through the director"))
        let left = try execute(Env.ipPath!, ["netns", "list"]).stdout
        #expect(!left.contains("rslab-"), "left behind: \(left)")
    }

    /// On a machine without arping (a fresh one, before install.sh) the lab still succeeds: the
    /// ARP verdict is skipped with the install hint, not failed. arping is hidden here by a
    /// private mount namespace.
    @Test func withoutArpingTheARPVerdictIsSkippedNotFailed() throws {
        let hide =
            "for f in /usr/sbin/arping /usr/bin/arping /sbin/arping /bin/arping; do [ -e $f ] && mount --bind /dev/null $f; done; exec \"$0\" lab -n 16"
        let r = try execute(try tool("unshare"), ["-m", "sh", "-c", hide, Env.binary])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("skipped: arping is not installed"), "\(r.stdout)")
        #expect(r.stdout.contains("the ARP verdict was skipped (apt-get install arping to see it)"))
        #expect(!(try execute(Env.ipPath!, ["netns", "list"]).stdout.contains("rslab-")))
    }

    @Test func keepThenClean() throws {
        let kept = try execute(Env.binary, ["lab", "--keep", "-n", "16"])
        #expect(kept.status == 0, "\(kept.stdout)\n\(kept.stderr)")
        #expect(kept.stdout.contains("ip netns exec rslab-client bash"))
        #expect(try execute(Env.ipPath!, ["netns", "list"]).stdout.contains("rslab-rs1"))
        let again = try execute(Env.binary, ["lab"])
        #expect(again.status == 1 && again.stderr.contains("rsagent lab --clean"))
        #expect(try execute(Env.binary, ["lab", "--clean"]).status == 0)
        #expect(!(try execute(Env.ipPath!, ["netns", "list"]).stdout.contains("rslab-")))
    }

    /// The lab's director follows the agents: after `drain --wait` on rs1 (which returns once
    /// the director has read the drain), new connections go to rs2 alone; after `ready`, to both.
    @Test func theDirectorFollowsADrain() throws {
        let kept = try execute(Env.binary, ["lab", "--keep", "-n", "8"])
        defer { _ = try? execute(Env.binary, ["lab", "--clean"]) }
        #expect(kept.status == 0, "\(kept.stdout)\n\(kept.stderr)")
        guard let logs = kept.stdout.split(separator: "\n").first(where: { $0.hasPrefix("Agent logs: ") }),
            let work = logs.dropFirst("Agent logs: ".count).split(separator: ",").first?.replacingOccurrences(
                of: "/rs1.log", with: "")
        else {
            Issue.record("no work directory in \(kept.stdout)")
            return
        }
        let drained = try execute(Env.binary, ["drain", "--wait", "--timeout", "20", "-c", "\(work)/rs1.yaml"])
        #expect(drained.status == 0, "\(drained.stdout)\n\(drained.stderr)")
        let director = (try? String(contentsOfFile: "\(work)/director.log", encoding: .utf8)) ?? ""
        #expect(director.contains("rs1 10.77.0.11 weight 0 (drain)"), "\(director)")
        func answers() throws -> [String: Int] {
            let p = try execute(
                Env.binary, ["probe", "--netns", "rslab-client", "192.0.2.100:31337", "-n", "40", "--json"])
            let json = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as? [String: Any]
            let rs = json?["realservers"] as? [[String: Any]] ?? []
            return Dictionary(uniqueKeysWithValues: rs.map { ($0["rip"] as? String ?? "", $0["answers"] as? Int ?? 0) })
        }
        let afterDrain = try answers()
        #expect((afterDrain["10.77.0.12"] ?? 0) >= 38, "after drain on rs1: \(afterDrain)")
        #expect(try execute(Env.binary, ["ready", "-c", "\(work)/rs1.yaml"]).status == 0)
        // The director's newest line gives rs1 a weight again.
        #expect(
            eventually(timeout: 10) {
                let log = (try? String(contentsOfFile: "\(work)/director.log", encoding: .utf8)) ?? ""
                return log.split(separator: "\n").last?.contains("rs1 10.77.0.11 weight 0") == false
            })
        let afterReady = try answers()
        #expect(
            (afterReady["10.77.0.11"] ?? 0) > 0 && (afterReady["10.77.0.12"] ?? 0) > 0, "after ready: \(afterReady)")
    }

    @Test func interruptedLabRemovesEverything() throws {
        let log = NSTemporaryDirectory() + "rsagent-lab-int-\(getpid()).log"
        defer { unlink(log) }
        let pid = try spawn(Env.binary, ["lab", "-n", "200"], stdout: log)
        let started = eventually(timeout: 30) {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("probe from the client")
        }
        #expect(started, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        kill(pid, SIGINT)
        #expect(wait(pid) == 130)
        #expect(!(try execute(Env.ipPath!, ["netns", "list"]).stdout.contains("rslab-")))
        let agents = try execute("/usr/bin/pgrep", ["-f", "run --netns rslab-"])
        #expect(agents.stdout.isEmpty, "agents left running: \(agents.stdout)")
    }

    /// `rsagent lab` starts programs by design: its agents (rsagent itself), and `arping` (and
    /// `ipvsadm` where the kernel has IPVS) — each by absolute path, never through a shell.
    /// (With the lab tests: only one lab can exist at a time.)
    @Test func labExecutesOnlyRsagentArpingAndIpvsadm() throws {
        let trace = NSTemporaryDirectory() + "rsagent-lab-\(getpid()).execs"
        defer { unlink(trace) }
        let r = try execute(
            try tool("strace"),
            ["-f", "-qq", "-e", "trace=execve,execveat", "-o", trace, Env.binary, "lab", "-n", "16"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let programs = Set(try SecurityTests.executed(inTrace: trace))
        // The agents are started from the resolved path of the running binary.
        let rsagent: Set = [Env.binary, URL(fileURLWithPath: Env.binary).resolvingSymlinksInPath().path]
        let allowed = rsagent.union([try tool("arping")]).union((try? tool("ipvsadm")).map { [$0] } ?? [])
        #expect(programs.isSubset(of: allowed), "lab executed \(programs.subtracting(allowed))")
        let arping = try tool("arping")
        #expect(!programs.isDisjoint(with: rsagent) && programs.contains(arping), "\(programs)")
    }
}
