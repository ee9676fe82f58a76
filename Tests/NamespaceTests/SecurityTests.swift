import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What the shipped systemd unit allows, and what rsagent really does: the daemon's system
/// calls (traced with `strace` while it works) all pass the unit's `SystemCallFilter`, no
/// command executes anything but rsagent itself (no shell, ever), and the unit's exposure score.
@Suite(.enabled(if: Env.canRun, Env.skipReason), .serialized)
struct SecurityTests {
    static let unit = Env.packageRoot.appendingPathComponent("systemd/rsagent.service").path

    /// `systemd-analyze security --offline=yes` on the shipped unit: 3.0 or lower.
    @Test func unitExposureIsAtMostThree() throws {
        let r = try execute(try tool("systemd-analyze"), ["security", "--offline=yes", Self.unit])
        let line = r.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = line.flatMap { l in l.split(separator: " ").compactMap { Double($0) }.last }
        print("security: \(line ?? "no score")")
        #expect(score != nil && score! <= 3.0, "\(r.stdout.suffix(400)) \(r.stderr)")
    }

    /// The unit's `SystemCallFilter=` lines, resolved to system call names with systemd's own
    /// group table (`systemd-analyze syscall-filter`): allowed = first list − later `~` lists.
    static func allowedSystemCalls() throws -> Set<String> {
        let table = try execute(try tool("systemd-analyze"), ["syscall-filter"]).stdout
        var groups: [String: [String]] = [:]
        var current: String?
        for raw in table.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if raw.hasPrefix("@") {
                current = line
                groups[line] = []
            } else if let c = current, !line.isEmpty, !line.hasPrefix("#") {
                groups[c, default: []].append(line)
            }
        }
        func expand(_ name: String, _ seen: inout Set<String>) -> Set<String> {
            guard name.hasPrefix("@") else { return [name] }
            guard seen.insert(name).inserted else { return [] }
            return (groups[name] ?? []).reduce(into: Set<String>()) { $0.formUnion(expand($1, &seen)) }
        }
        var allowed = Set<String>()
        let unitText = try String(contentsOfFile: Self.unit, encoding: .utf8)
        for line in unitText.split(separator: "\n") where line.hasPrefix("SystemCallFilter=") {
            var value = line.dropFirst("SystemCallFilter=".count)
            let deny = value.hasPrefix("~")
            if deny { value = value.dropFirst() }
            var seen = Set<String>()
            let names = value.split(separator: " ").reduce(into: Set<String>()) {
                $0.formUnion(expand(String($1), &seen))
            }
            if deny { allowed.subtract(names) } else { allowed.formUnion(names) }
        }
        return allowed
    }

    /// System call names in an `strace -f` log. Lines read `PID name(…`, or `name(…` while strace
    /// traces a single task (it prints the pid only once there are several).
    static func systemCalls(inTrace path: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let call = line.drop { $0.isNumber }.drop { $0 == " " }
            guard let paren = call.firstIndex(of: "(") else { continue }
            let name = call[..<paren]
            if !name.isEmpty && name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                counts[String(name), default: 0] += 1
            }
        }
        return counts
    }

    /// Programs executed in an `strace -f -e trace=execve` log.
    static func executed(inTrace path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard let start = line.range(of: "execve(\"") else { return nil }
            return String(line[start.upperBound...].prefix { $0 != "\"" })
        }
    }

    /// `rsagent run` under `strace -f` through the work of a day: start, a reload, drain and
    /// ready on the admin socket, the load report on both ports, the test service on both ports,
    /// a VIP removed and an `rp_filter` changed (both repaired), SIGTERM. Every call it makes is
    /// one the unit allows, and it executes nothing.
    @Test func theDaemonStaysInsideTheUnitsSystemCallFilter() throws {
        let allowed = try Self.allowedSystemCalls()
        #expect(allowed.contains("read") && !allowed.contains("setuid") && !allowed.contains("init_module"))
        let ns = try Namespace()
        let profile = try ns.profile(
            """
            mode: dr
            vips:
              - address: 192.0.2.100
                services: [tcp/31337]
            rp_filter: loose
            load: { http: 127.0.0.1:3334, agent_check: 127.0.0.1:3333 }
            test_service: { port: 31337, http_port: 31380 }
            """)
        let trace = ns.stateDir + ".strace", log = ns.stateDir + ".log"
        defer { unlink(trace); unlink(log) }
        // strace runs rsagent inside the namespace with no --netns: exactly what the unit starts.
        let tracer = try ns.start(
            [try tool("strace"), "-f", "-q", "-o", trace, Env.binary, "run", "-c", profile, "--resync-interval", "1"],
            log: log)
        defer { finish(tracer) }
        let logText = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(eventually(timeout: 20) { logText().contains("running: watching") }, "\(logText())")
        guard let daemonPID = DaemonPID.read(ns.stateDir) else {
            Issue.record("no daemon.json in \(ns.stateDir): \(logText())")
            return
        }
        kill(daemonPID, SIGHUP)
        #expect(eventually(timeout: 10) { logText().contains("reloaded") })
        let sock = ns.stateDir + "/admin.sock"
        #expect(try execute(Env.binary, ["drain", "--socket", sock]).status == 0)
        #expect(try execute(Env.binary, ["ready", "--socket", sock]).status == 0)
        for port in ["3334", "3333"] {
            let w = try ns.rsagent("weight", "127.0.0.1:\(port)")
            #expect(w.status == 0, "weight on \(port): \(w.stderr)")
        }
        for port in ["31337", "31380"] {
            let p = try ns.rsagent("probe", "127.0.0.1:\(port)", "-n", "3")
            #expect(p.status == 0, "probe on \(port): \(p.stderr)")
        }
        try ns.sh("addr del 192.0.2.100/32 dev lo")
        try ns.setSysctl("veth0/rp_filter", 1)
        #expect(eventually(timeout: 10) { try ns.addresses(on: "lo").contains("192.0.2.100/32") })
        #expect(eventually(timeout: 10) { try ns.sysctls()["veth0/rp_filter"] == 2 })
        kill(daemonPID, SIGTERM)
        #expect(wait(tracer) == 0, "\(logText())")

        // strace writes the daemon's end (`+++ exited with 0 +++`, kept by -q) last: seen once,
        // the trace is whole. (A run was seen to read it before strace had flushed.)
        #expect(
            eventually(timeout: 10) {
                ((try? String(contentsOfFile: trace, encoding: .utf8)) ?? "").contains("+++ exited with 0 +++")
            })
        let used = try Self.systemCalls(inTrace: trace)
        let refused = used.keys.filter { !allowed.contains($0) }.sorted()
        print(
            "security: the daemon made \(used.values.reduce(0, +)) calls of \(used.count) kinds; outside the filter: \(refused)"
        )
        #expect(used.count > 20, "the trace looks empty: \(used)")
        #expect(refused.isEmpty, "system calls the unit's filter refuses: \(refused)")
        #expect(try Self.executed(inTrace: trace) == [Env.binary], "the daemon executed something")
    }

    /// Every one-shot command executes nothing but itself (no shell, no `ip`, no `sysctl`).
    @Test func noCommandExecutesAnything() throws {
        let ns = try Namespace()
        let profile = try ns.profile("mode: dr\nvips: [192.0.2.100, '2001:db8::100']\n")
        let trace = ns.stateDir + ".execs"
        defer { unlink(trace) }
        for args in [
            ["apply", "-c", profile], ["status", "-c", profile], ["check", "-c", profile], ["down", "-c", profile],
        ] {
            let r = try ns.exec(
                try tool("strace"), "-f", "-qq", "-e", "trace=execve,execveat", "-o", trace, Env.binary, args[0],
                args[1], args[2])
            #expect(r.status == 0 || (args[0] == "check" && r.status == 1), "\(args[0]): \(r.stderr)")
            #expect(try Self.executed(inTrace: trace) == [Env.binary], "\(args[0]) executed something")
        }
    }

}

/// The daemon's pid from `state_dir/daemon.json`.
enum DaemonPID {
    static func read(_ stateDir: String) -> pid_t? {
        guard let data = FileManager.default.contents(atPath: stateDir + "/daemon.json"),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let pid = json["pid"] as? Int
        else { return nil }
        return pid_t(pid)
    }
}
