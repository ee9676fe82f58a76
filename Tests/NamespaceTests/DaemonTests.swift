import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `rsagent run` in the background inside a test namespace, with its log in a file.
final class Daemon {
    let pid: pid_t
    let logPath: String
    private var exited: Int32?

    convenience init(
        _ ns: Namespace, profile: String, environment: [String: String] = [:], binary: String = Env.binary,
        resync: Int = 1
    ) throws {
        try self.init(
            netns: ns.name, logBase: ns.stateDir, profile: profile, environment: environment, binary: binary,
            resync: resync)
    }

    /// `wrapper` runs before the daemon (`unshare -m …` to give it a /run of its own).
    init(
        netns: String, logBase: String, profile: String, environment: [String: String] = [:],
        binary: String = Env.binary, resync: Int = 1, wrapper: [String] = []
    ) throws {
        logPath = logBase + "-\(UUID().uuidString).log"
        let command = [binary, "run", "--netns", netns, "-c", profile, "--resync-interval", String(resync)]
        pid = try spawn(
            wrapper.first ?? binary, Array((wrapper + command).dropFirst()), stderr: logPath, environment: environment)
        guard eventually({ self.log.contains("running: watching") }) else {
            throw HarnessError("the daemon did not start: \(log)")
        }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var isRunning: Bool { exited == nil && kill(pid, 0) == 0 }

    /// Sends `signal` and waits for the exit status.
    func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        if let exited { return exited }
        kill(pid, signal)
        let status = wait(pid)
        exited = status
        return status
    }

    /// The exit status, if it exits within `timeout` seconds (signals sent elsewhere).
    func exitStatus(within timeout: Double) -> Int32? {
        if let exited { return exited }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if waitpid(pid, &status, WNOHANG) == pid {
                let sig = status & 0x7f
                exited = sig == 0 ? (status >> 8) & 0xff : 128 + sig
                return exited
            }
            usleep(50_000)
        } while Date() < deadline
        return nil
    }

    deinit {
        if exited == nil {
            kill(pid, SIGKILL)
            _ = wait(pid)
        }
        unlink(logPath)
    }
}

/// Polls `condition` every 50 ms for up to `timeout` seconds.
func eventually(timeout: Double = 5, _ condition: () throws -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    repeat {
        if (try? condition()) == true { return true }
        usleep(50_000)
    } while Date() < deadline
    return (try? condition()) == true
}

@Suite(.enabled(if: Env.canRun, Env.skipReason))
struct DaemonTests {
    let twoVIPs = "mode: dr\nvips: [192.0.2.100, 192.0.2.101]\nrp_filter: loose\n"

    @Test func repairsADeletedVIPAndSaysWhoRemovedIt() throws {
        let ns = try Namespace()
        let d = try Daemon(ns, profile: try ns.profile(twoVIPs))
        // The echo of the daemon's own start-up changes (its rp_filter write) first: on a loaded
        // machine a deletion made at once was repaired by the pass that echo started, before the
        // deletion's own event came, and then no line named the remover.
        usleep(1_000_000)
        try ns.sh("addr del 192.0.2.100/32 dev lo")
        #expect(eventually { try ns.addresses(on: "lo").contains("192.0.2.100/32") })
        // One repair line names this removal among its causes (on a loaded machine the daemon's
        // own start-up events can arrive in the same batch and be listed first).
        func repairLine(_ cause: String) -> Bool {
            d.log.split(separator: "\n").contains {
                $0.contains("repaired: add \(cause.prefix { $0 != " " }) to lo (cause: ") && $0.contains(cause)
            }
        }
        #expect(eventually(timeout: 20) { repairLine("192.0.2.100/32 removed from lo by ") }, "\(d.log)")
        // The remover is named when its process can still be found. A plain `ip` exits at once and
        // can be gone before the daemon looks, so this remover stays: `ip -batch -` runs the
        // deletion and then waits for more commands on its stdin until the pipe is closed.
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let remover = try spawn(Env.ipPath!, ["-n", ns.name, "-batch", "-"], stdin: (fds[0], fds[1]))
        close(fds[0])
        let command = "addr del 192.0.2.101/32 dev lo\n"
        #expect(write(fds[1], command, command.utf8.count) == command.utf8.count)
        #expect(
            eventually(timeout: 20) { repairLine("192.0.2.101/32 removed from lo by pid \(remover) (ip)") }, "\(d.log)")
        close(fds[1])
        #expect(wait(remover) == 0)
        #expect(eventually { try ns.addresses(on: "lo").contains("192.0.2.101/32") }, "\(d.log)")
        let status = try ns.rsagent("status", "-c", try ns.profile(twoVIPs), "--json")
        let daemon = status.json["daemon"] as? [String: Any]
        #expect(daemon?["pid"] as? Int == Int(d.pid))
        #expect((daemon?["repairs"] as? Int ?? 0) >= 1)
        #expect(d.stop() == 0)
    }

    @Test func repairsRpFilterAtOnceAndArpWithinASecond() throws {
        let ns = try Namespace()
        let d = try Daemon(ns, profile: try ns.profile(twoVIPs))
        try ns.setSysctl("veth0/rp_filter", 1)  // raises RTM_NEWNETCONF
        #expect(eventually { try ns.sysctls()["veth0/rp_filter"] == 2 })
        #expect(eventually { d.log.contains("cause: rp_filter changed") })
        try ns.setSysctl("veth0/arp_ignore", 0)  // raises no event at all: found by re-reading
        #expect(eventually { try ns.sysctls()["veth0/arp_ignore"] == 1 })
        #expect(eventually { d.log.contains("cause: net.ipv4.conf.veth0.arp_ignore is 0 but the profile needs 1") })
        #expect(d.stop() == 0)
    }

    @Test func aDeviceTakenDownIsBroughtBackWithItsVIPs() throws {
        let ns = try Namespace()
        let d = try Daemon(ns, profile: try ns.profile("mode: dr\nvips: [192.0.2.100, '2001:db8::100']\n"))
        try ns.sh("link set lo down")  // also makes the kernel drop lo's IPv6 addresses
        #expect(eventually { try ns.links().contains("lo - up") })
        #expect(eventually { try ns.addresses(on: "lo").isSuperset(of: ["192.0.2.100/32", "2001:db8::100/128"]) })
        #expect(eventually { d.log.contains("device lo went down") })
        // The facing interface is the operator's, never set up by rsagent: with it down the
        // default route is gone, and the daemon says why it cannot plan instead of guessing.
        try ns.sh("link set veth0 down")
        #expect(eventually { d.log.contains("cannot tell which interface faces the director") })
        #expect(try ns.links().contains("veth0 veth down"))
        #expect(d.stop() == 0)
    }

    @Test func killMinus9ThenRestartConvergesAndLeavesForeignAddresses() throws {
        let ns = try Namespace()
        let path = try ns.profile(twoVIPs)
        let first = try Daemon(ns, profile: path)
        #expect(first.stop(SIGKILL) == 128 + SIGKILL)
        try ns.sh("addr del 192.0.2.101/32 dev lo")
        try ns.sh("addr add 203.0.113.9/32 dev lo")
        try ns.sh("addr add 10.99.0.99/24 dev veth0")
        let second = try Daemon(ns, profile: path)  // a stale admin socket and status file are fine
        #expect(eventually { try ns.addresses(on: "lo").isSuperset(of: ["192.0.2.100/32", "192.0.2.101/32"]) })
        #expect(try ns.addresses(on: "lo").contains("203.0.113.9/32"))
        #expect(try ns.addresses(on: "veth0").contains("10.99.0.99/24"))
        #expect(second.stop() == 0)
    }

    @Test func reloadKeepsTheOldProfileWhenTheNewOneIsInvalid() throws {
        let ns = try Namespace()
        let path = try ns.profile(twoVIPs)
        let d = try Daemon(ns, profile: path)
        try ("mode: dr\nvips: [192.0.2.100]\nbogus: 1\n").write(toFile: path, atomically: true, encoding: .utf8)
        kill(d.pid, SIGHUP)
        #expect(eventually { d.log.contains("reload rejected: \(path):3:1: unknown key `bogus`") })
        #expect(eventually { d.log.contains("keeping the running profile") })  // the next line of the log
        #expect(d.isRunning)
        #expect(try ns.addresses(on: "lo").isSuperset(of: ["192.0.2.100/32", "192.0.2.101/32"]))
        // A valid profile with one VIP fewer: the daemon converges to it.
        _ = try ns.profile("mode: dr\nvips: [192.0.2.100]\nrp_filter: loose\n")
        kill(d.pid, SIGHUP)
        #expect(eventually { !(try ns.addresses(on: "lo").contains("192.0.2.101/32")) })
        #expect(try ns.addresses(on: "lo").contains("192.0.2.100/32"))
        #expect(d.stop() == 0)
    }

    @Test func sigtermKeepsOrRemovesAsTheProfileSays() throws {
        let ns = try Namespace()
        let before = try ns.snapshot()
        let keep = try Daemon(ns, profile: try ns.profile(twoVIPs))
        #expect(keep.stop(SIGTERM) == 0)
        #expect(try ns.addresses(on: "lo").contains("192.0.2.100/32"))
        #expect(keep.log.contains("on_stop: keep"))
        let remove = try Daemon(ns, profile: try ns.profile(twoVIPs + "on_stop: remove\n"))
        #expect(remove.stop(SIGINT) == 0)
        #expect(remove.log.contains("on_stop: remove"))
        #expect(try ns.snapshot() == before)
        #expect(DaemonStatusFile.exists(ns.stateDir) == false)
    }

    @Test func aDeliberateDownIsNotFought() throws {
        let ns = try Namespace()
        let path = try ns.profile(twoVIPs)
        let d = try Daemon(ns, profile: path)
        #expect(try ns.rsagent("down", "-c", path).status == 0)
        usleep(2_500_000)  // two periodic passes
        #expect(!(try ns.addresses(on: "lo").contains("192.0.2.100/32")))
        #expect(d.log.contains("not re-asserting: held down by `rsagent down`"))
        #expect(try ns.rsagent("apply", "-c", path).status == 0)
        try ns.sh("addr del 192.0.2.101/32 dev lo")
        #expect(eventually { try ns.addresses(on: "lo").contains("192.0.2.101/32") })
        #expect(d.stop() == 0)
    }

    @Test func maintPausesRepairAndReadyResumesIt() throws {
        let ns = try Namespace()
        let path = try ns.profile(twoVIPs)
        let sock = ns.stateDir + "/admin.sock"
        var d: Daemon? = try Daemon(ns, profile: path)
        let maint = try execute(Env.binary, ["maint", "--socket", sock])
        #expect(maint.status == 0, "\(maint.stderr)")
        #expect(maint.stdout.hasPrefix("admin state: maint"))
        try ns.sh("addr del 192.0.2.100/32 dev lo")
        usleep(2_500_000)
        #expect(!(try ns.addresses(on: "lo").contains("192.0.2.100/32")))
        #expect(d?.log.contains("not re-asserting: maint") == true)
        // The state survives a restart of the daemon.
        #expect(d?.stop() == 0)
        d = try Daemon(ns, profile: path)
        let status = try ns.rsagent("status", "-c", path, "--json")
        #expect(status.json["admin_state"] as? String == "maint")
        #expect((status.json["daemon"] as? [String: Any])?["paused"] as? String == "maint")
        #expect(!(try ns.addresses(on: "lo").contains("192.0.2.100/32")))
        #expect(try execute(Env.binary, ["ready", "--socket", sock]).status == 0)
        #expect(eventually { try ns.addresses(on: "lo").contains("192.0.2.100/32") })
        #expect(eventually { d?.log.contains("cause: admin state ready") == true }, "\(d?.log ?? "")")
        #expect(try execute(Env.binary, ["drain", "--socket", sock]).stdout.hasPrefix("admin state: drain"))
        #expect(d?.stop() == 0)
    }

    @Test func adminCommandsWithoutADaemonOrAsNonRootFailClearly() throws {
        let ns = try Namespace()
        let sock = ns.stateDir + "/admin.sock"
        let none = try execute(Env.binary, ["drain", "--socket", sock])
        #expect(none.status == 1)
        #expect(none.stderr.contains("no daemon is listening"))
        let d = try Daemon(ns, profile: try ns.profile(twoVIPs))
        let mode = try FileManager.default.attributesOfItem(atPath: sock)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // runuser is in util-linux, which Debian always has: a missing one fails here, not skips.
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser"), "runuser (util-linux)")
        let r = try execute("/usr/sbin/runuser", ["-u", "nobody", "--", Env.binary, "maint", "--socket", sock])
        #expect(r.status != 0)
        #expect(r.stderr.contains("permission denied") || r.stderr.contains("Permission denied"), "\(r.stderr)")
        #expect(DaemonAdmin.state(ns.stateDir) == "ready")
        #expect(d.stop() == 0)
    }

    @Test func tellsSystemdWhenReadyAndStopping() throws {
        let ns = try Namespace()
        let notify = try NotifySocket(ns.stateDir + ".notify")
        let d = try Daemon(
            ns, profile: try ns.profile(twoVIPs),
            environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        usleep(1_000_000)
        #expect(d.stop() == 0)
        let messages = notify.messages()
        #expect(messages.first?.hasPrefix("READY=1") == true, "\(messages)")
        #expect(messages.contains("STOPPING=1"), "\(messages)")
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 2, "\(messages)")
    }
}

enum DaemonAdmin {
    static func state(_ stateDir: String) -> String {
        ((try? String(contentsOfFile: stateDir + "/admin-state", encoding: .utf8)) ?? "ready")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

enum DaemonStatusFile {
    static func exists(_ stateDir: String) -> Bool { FileManager.default.fileExists(atPath: stateDir + "/daemon.json") }
}
