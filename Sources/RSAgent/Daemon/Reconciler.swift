import Foundation
import Logging
import Netlink
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's core service: keeps the host converged to the profile.
///
/// It listens to rtnetlink events (an owned VIP removed, a device going down, `rp_filter`
/// changing) and re-plans at once; a periodic full pass catches what raises no event
/// (`arp_*` sysctls) and anything missed. An overrun re-reads everything. It stands still while
/// the admin state is `maint` or a deliberate `rsagent down` holds the host down. SIGHUP
/// re-reads the profile; an invalid one is reported and the running one kept.
///
/// The netlink wait is blocking, so the loop runs on a thread of its own (created by this
/// process after it entered its namespace); `run()` bridges it into the service group.
public final class Reconciler: Service, @unchecked Sendable {
    private let mutex = NSLock()
    private var stopRequested = false
    private var reloadRequested = false
    private var requestedCauses: [String] = []
    private var currentProfile: Profile
    private let path: String
    private let logger: Logger
    private let notifier: SystemdNotifier
    private let resyncInterval: Double
    private var status: DaemonStatus
    private var lastProblems: [String] = []
    /// The facing interfaces the last pass resolved (the default route's when the profile
    /// names none), so their link events count too.
    private var facing: [String] = []
    /// The facing interfaces by index, to recognise a rename (`ip link set NAME name NEW`).
    private var facingIndexes: [InterfaceIndex: String] = [:]
    private var nextOverrunNotice = Date.distantPast

    /// The profile in force (it changes on a successful reload).
    public var profile: Profile { mutex.withLock { currentProfile } }

    public init(profile: Profile, path: String, logger: Logger, notifier: SystemdNotifier, resyncInterval: Double) {
        currentProfile = profile
        self.path = path
        self.logger = logger
        self.notifier = notifier
        self.resyncInterval = resyncInterval
        status = DaemonStatus(pid: getpid(), startedAt: DaemonStatus.now(), profile: path)
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) { self.requestReload() }
                }
                group.addTask { try await self.runLoopThread() }
                try await group.next()  // the loop ended: stop listening for SIGHUP too
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.requestStop()
        }
    }

    public func requestStop() { mutex.withLock { stopRequested = true } }
    public func requestReload() { mutex.withLock { reloadRequested = true } }
    /// Asks for a pass soon (the admin state changed, for instance).
    public func requestConverge(cause: String) { mutex.withLock { requestedCauses.append(cause) } }

    private func runLoopThread() async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            let thread = Thread {
                do { try self.loop(); done.resume() } catch { done.resume(throwing: error) }
            }
            thread.name = "rsagent-reconciler"
            thread.start()
        }
    }

    private func loop() throws {
        let host = try KernelHost()
        let events = try EventSocket()
        converge(host, causes: ["start"])
        notifier.notify("READY=1\nSTATUS=converged to \(path)")
        logger.info("running: watching links, addresses and rp_filter; full check every \(Int(resyncInterval)) s")
        var nextFull = Date().addingTimeInterval(resyncInterval)
        var nextWatchdog = Date()
        while true {
            let (stop, reload, requested) = mutex.withLock {
                defer {
                    reloadRequested = false
                    requestedCauses = []
                }
                return (stopRequested, reloadRequested, requestedCauses)
            }
            if stop { break }
            if reload { self.reload(host) }
            if let interval = notifier.watchdogInterval, Date() >= nextWatchdog {
                notifier.notify("WATCHDOG=1")
                nextWatchdog = Date().addingTimeInterval(interval)
            }
            var causes = requested
            do {
                // Device names are looked up once per batch: a flush of 1,000 VIPs is one dump.
                var names: [InterfaceIndex: String]?
                causes += try events.wait(timeout: requested.isEmpty ? 0.25 : 0).compactMap {
                    cause(of: $0, host: host, names: &names)
                }
            } catch {
                causes = ["netlink event socket: \(error); re-reading everything"]
            }
            if Date() >= nextFull {
                causes.append("periodic check")
                nextFull = Date().addingTimeInterval(resyncInterval)
            }
            if !causes.isEmpty { converge(host, causes: causes) }
        }
        logger.info("stopping")
    }

    /// Why an event may need a repair, or nil when it cannot concern the profile.
    private func cause(of event: NetlinkEvent, host: KernelHost, names: inout [InterfaceIndex: String]?) -> String? {
        switch event {
        case .addressRemoved(let a, let by) where a.isOwned:
            if Self.isOwnPort(by) { return nil }  // our own removal of a stale VIP
            if names == nil {
                names = Dictionary(((try? host.socket.links()) ?? []).map { ($0.index, $0.name) }) { a, _ in a }
            }
            let dev = names?[a.index] ?? "#\(a.index.rawValue)"
            return "\(a.address)/\(a.prefixLength) removed from \(dev) by \(Self.describe(port: by))"
        case .link(let index, let name, _, false) where facingIndexes[index].map { $0 != name } ?? false:
            let old = facingIndexes[index]!
            facingIndexes[index] = name
            if profile.interfaces == nil {
                logger.notice(
                    "interface \(old) was renamed to \(name); the facing interface is found again from the default route"
                )
            } else {
                logger.warning(
                    "interface \(old) was renamed to \(name): its ARP settings stay as they are, but rsagent asserts them by name; name \(name) in `interfaces:` and reload (SIGHUP), or rename it back"
                )
            }
            return "interface \(old) renamed to \(name)"
        case .link(_, let name, let isUp, let removed):
            let p = profile
            guard name == p.deviceName || (p.interfaces ?? facing).contains(name) else { return nil }
            return removed ? "device \(name) was deleted" : (isUp ? nil : "device \(name) went down")
        case .netconf(let index, let rp):
            return
                "rp_filter changed on \(index == -1 ? "all" : index == -2 ? "default" : "#\(index)") (now \(rp.map(String.init) ?? "?"))"
        case .overrun:
            // Said even when nothing turns out to need repair; at most every 10 s in an event storm.
            if Date() >= nextOverrunNotice {
                logger.notice("netlink events were lost (receive queue overrun); re-reading everything")
                nextOverrunNotice = Date().addingTimeInterval(10)
            }
            return "netlink overrun (events lost): re-reading everything"
        default:
            return nil
        }
    }

    /// libnl numbers its sockets pid + n << 22; rsagent's own requests must not look foreign.
    static func isOwnPort(_ port: UInt32) -> Bool { port != 0 && Int32(port & 0x3F_FFFF) == getpid() }

    static func describe(port: UInt32) -> String {
        if port == 0 { return "the kernel" }
        let pid = Int32(port & 0x3F_FFFF)
        if let comm = readTextFile("/proc/\(pid)/comm") {
            return "pid \(pid) (\(comm.trimmingCharacters(in: .whitespacesAndNewlines)))"
        }
        return "netlink port \(port) (process gone)"
    }

    private func converge(_ host: KernelHost, causes: [String]) {
        let p = profile
        let admin = DaemonSignals.adminState(p.stateDir)
        let held = FileManager.default.fileExists(atPath: DaemonSignals.heldPath(p.stateDir))
        let paused = admin == "maint" ? "maint" : held ? "held down by `rsagent down`" : nil
        if paused != status.paused {
            if let paused {
                logger.notice("not re-asserting: \(paused); `rsagent ready` or `rsagent apply` resumes")
            } else if status.paused != nil {
                logger.notice("re-asserting again")
            }
            status.paused = paused
            status.save(stateDir: p.stateDir)
        }
        if paused != nil { return }
        let result: ApplyResult
        do {
            result = try Operations.apply(profile: p, path: path, host: host, dryRun: false, adopt: false)
        } catch {
            logger.error("checking the host: \(error)")
            return
        }
        facing = result.interfaces
        // From the links this pass observed. A renamed device keeps its old entry until its
        // rename event is seen: the pass may run between the rename and the event.
        let links = host.linkIndexes, names = Set(facing + (profile.interfaces ?? []))
        let present = Set(links.values)
        facingIndexes = facingIndexes.filter { present.contains($0.key) && names.contains($0.value) }
        for (name, index) in links where names.contains(name) { facingIndexes[index] = name }
        let problems = result.conflicts.map(\.message) + result.errors
        if problems != lastProblems {
            for m in problems { logger.error("\(m)") }
            lastProblems = problems
        }
        guard result.result == "converged" else { return }
        let what = result.actions.filter { $0.status == "done" }.map(\.summary).joined(separator: "; ")
        let why = causes.joined(separator: "; ")
        if causes == ["start"] {
            logger.info("applied \(path): \(what)")
        } else {
            logger.warning("repaired: \(what) (cause: \(why))")
            status.repairs += 1
            status.lastRepairAt = DaemonStatus.now()
            status.lastRepair = "\(what) (cause: \(why))"
        }
        status.save(stateDir: p.stateDir)
    }

    private func reload(_ host: KernelHost) {
        do {
            let new = try ProfileDecoder.load(path: path)
            mutex.withLock { currentProfile = new }
            logger.notice("reloaded \(path)")
            notifier.notify("STATUS=reloaded \(path)")
            converge(host, causes: ["profile reloaded"])
        } catch let e as ProfileError {
            for p in e.problems { logger.error("reload rejected: \(p)") }
            logger.error("keeping the running profile; fix \(path) and send SIGHUP again")
        } catch {
            logger.error("reload failed: \(error); keeping the running profile")
        }
    }

    /// Writes the first status file, so `status` sees the daemon from its first moment.
    public func announce() {
        try? FileManager.default.removeItem(atPath: DaemonSignals.heldPath(profile.stateDir))
        try? FileManager.default.createDirectory(
            atPath: profile.stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        status.save(stateDir: profile.stateDir)
    }

    /// Removes the status file when the daemon ends.
    public func retire() { unlink(DaemonStatus.path(profile.stateDir)) }
}
