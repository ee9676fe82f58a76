import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's open descriptors and resident memory, read from /proc.
struct ProcessUsage {
    var descriptors: Int
    var rssKiB: Int

    init?(_ pid: pid_t) {
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let rss = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        descriptors = fds.count
        rssKiB = Int(rss.split(separator: " ")[1]) ?? 0
    }
}

@Suite(
    .enabled(if: Env.canRun, Env.skipReason),
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: Env.releaseBinary),
        "its latency bound is for the optimised build: swift build -c release (scripts/test does)"),
    .serialized)
struct AbuseTests {
    /// Every TCP listener (load report HTTP and agent-check, test service TCP and HTTP) under
    /// 1,000 idle connections, 1 MB request lines, random bytes, half-open connections, stalled
    /// request heads and slowloris headers at once, all from one address (tests/abuse/abuse.py),
    /// while a director at another address polls /load: it is always answered, p99 at most
    /// 100 ms; the daemon's RSS stays at most 64 MB and its descriptors within the caps.
    /// The daemon is the release build: the bounds are about the product, not a debug build.
    @Test func everyListenerUnderAbuseKeepsAnsweringWithinBounds() throws {
        let ns = try Namespace()
        let profile = try ns.allListenersProfile()
        let d = try Daemon(ns, profile: profile, binary: Env.releaseBinary)
        guard let idle = ProcessUsage(d.pid) else { throw HarnessError("cannot read /proc/\(d.pid)") }
        // What the caps allow: each listener full, on top of what the idle daemon holds.
        let bound = idle.descriptors + 2 * 256 + 2 * 1024
        let sampling = SampledUsage(pid: d.pid)
        let script = Env.packageRoot.appendingPathComponent("tests/abuse/abuse.py").path
        let r = try ns.exec(
            try tool("python3"), script, "--ports", "3334,3333,31337,31380", "--load", "3334", "--duration", "10")
        let peak = sampling.stop()
        print("abuse: \(r.stdout.trimmingCharacters(in: .newlines)) \(r.stderr)")
        print(
            "abuse: daemon idle \(idle.descriptors) fds \(idle.rssKiB / 1024) MB; peak \(peak.descriptors) fds (bound \(bound)), \(peak.rssKiB / 1024) MB"
        )
        let out = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(r.status == 0, "\(r.stderr)")
        #expect(out["failed"] as? Int == 0, "the reader was refused or cut off: \(out)")
        #expect((out["reads"] as? Int ?? 0) > 100, "\(out)")
        #expect((out["p99_ms"] as? Double ?? .infinity) <= 100, "\(out)")
        #expect((out["idle_open"] as? Int ?? 0) >= 3900, "the idle flood did not happen: \(out)")
        // Stalled heads and trickling headers were held and then cut (header deadline, or the
        // one address's share making room), while the reader at another address was served.
        #expect((out["stalled"] as? Int ?? 0) > 100, "\(out)")
        #expect((out["slow_cut"] as? Int ?? 0) > 0, "\(out)")
        #expect(peak.rssKiB <= 64 * 1024)
        #expect(peak.descriptors <= bound)
        // The idle flood on the load port went over its cap of 256: silent ones made room.
        let metrics = try ns.curl("http://127.0.0.1:3334/metrics").stdout
        let evicted = metrics.split(separator: "\n").first {
            $0.hasPrefix("rsagent_listener_evicted_connections_total{listener=\"http\"}")
        }
        #expect((evicted?.split(separator: " ").last.flatMap { Int($0) } ?? 0) > 0, "\(evicted ?? "no counter")")
        // Afterwards: everything answers and the held connections are gone again.
        #expect(try ns.rsagent("probe", "127.0.0.1:31337", "-n", "5").status == 0)
        #expect(try ns.rsagent("probe", "127.0.0.1:31380", "-n", "5").status == 0)
        #expect(try ns.rsagent("weight", "127.0.0.1:3333").status == 0)
        #expect(eventually(timeout: 15) { (ProcessUsage(d.pid)?.descriptors ?? .max) <= idle.descriptors + 8 })
        #expect(d.stop() == 0)
    }
}

extension Namespace {
    /// A profile with every TCP listener: load report HTTP and agent-check, test service TCP and HTTP.
    func allListenersProfile() throws -> String {
        try profile(
            """
            mode: dr
            vips: [192.0.2.100]
            load: { http: 127.0.0.1:3334, agent_check: 127.0.0.1:3333 }
            test_service: { port: 31337, http_port: 31380 }
            """)
    }
}

@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct DescriptorLimitTests {
    /// Started with a soft open-file limit of 1,024 (a shell's usual), `rsagent run` raises it
    /// to what its listeners' caps need: 64 + 2 × 256 + 2 × 1,024.
    @Test func theDaemonRaisesItsOpenFileLimitToTheCaps() throws {
        let ns = try Namespace()
        let profile = try ns.allListenersProfile()
        let log = ns.stateDir + ".log"
        defer { unlink(log) }
        // prlimit execs the daemon: the pid is the daemon's.
        let pid = try ns.start(
            [try tool("prlimit"), "--nofile=1024:20000", Env.binary, "run", "-c", profile], log: log)
        defer { finish(pid) }
        #expect(
            eventually(timeout: 20) {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("running: watching")
            })
        let limits = (try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)) ?? ""
        let soft = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }?
            .split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.flatMap { Int($0) }
        #expect(soft == 64 + 2 * 256 + 2 * 1024, "\(limits)")
    }
}

/// Samples a process's usage every 50 ms on a thread of its own and keeps the peaks.
final class SampledUsage: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = ProcessUsage(descriptors: 0, rssKiB: 0)
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init(pid: pid_t) {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                if let u = ProcessUsage(pid) {
                    lock.withLock {
                        peak.descriptors = max(peak.descriptors, u.descriptors)
                        peak.rssKiB = max(peak.rssKiB, u.rssKiB)
                    }
                }
                usleep(50_000)
            }
            done.signal()
        }
    }

    func stop() -> ProcessUsage {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { peak }
    }
}

extension ProcessUsage {
    init(descriptors: Int, rssKiB: Int) {
        self.descriptors = descriptors
        self.rssKiB = rssKiB
    }
}
