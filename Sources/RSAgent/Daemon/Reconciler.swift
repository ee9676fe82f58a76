import Logging
import Netlink
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's core service: keeps the host converged to the profile.
///
/// It listens to rtnetlink events (an owned VIP removed, a device going down, `rp_filter`
/// changing) and re-plans at once. The sysctls it asserts are re-read twice a second, since the
/// kernel announces no change to `arp_ignore`/`arp_announce`; a periodic full pass catches
/// anything else, and an overrun re-reads everything. While the host does not match the
/// profile (a conflict, a failed apply) every link or address event, and a retry every two
/// seconds, tries again — and `health` tells the load report, so directors see the realserver
/// out of service until then. It stands still while the admin state is `maint` or a deliberate
/// `rsagent down` holds the host down. SIGHUP re-reads the profile; an invalid one, or one that
/// moves `state_dir`, is reported and the running one kept.
///
/// The netlink wait is blocking, so the loop runs on a thread of its own (created by this
/// process after it entered its namespace); `run()` bridges it into the service group.
public final class Reconciler: DaemonService, @unchecked Sendable {
    private let mutex = Lock()
    private var stopRequested = false
    private var reloadRequested = false
    private var requestedCauses: [String] = []
    private var currentProfile: Profile
    private let path: String
    private let logger: Logger
    private let notifier: SystemdNotifier
    private let resyncInterval: Double
    private let health: DaemonHealth
    private var status: DaemonStatus
    private var lastProblems: [String] = []
    /// Whether systemd has been told READY=1 (only once the host first matched the profile).
    private var toldReady = false
    /// The sysctls the last pass asserted, re-read between passes.
    private var asserted: [SysctlKey] = []
    /// `tun` mode, from the last pass: the decapsulating devices (their link events count like
    /// the VIP device's), the FOU ports and the MSS clamp's comment (re-read with the sysctls).
    private var decapDevices: Set<String> = []
    private var assertedFOUPorts: [FOUPort] = []
    private var assertedMSS: String?
    private var nextSysctlRead = 0.0
    private var nextRetry = 0.0
    /// Another rsagent daemon seen removing this profile's VIPs (possible only where it cannot
    /// see our namespace claim, as in a container with its own /run): never fought.
    private var rival: (pid: Int32, command: String)?
    /// The facing interfaces the last pass resolved (the default route's when the profile
    /// names none), so their link events count too.
    private var facing: [String] = []
    /// The facing interfaces by index, to recognise a rename (`ip link set NAME name NEW`).
    private var facingIndexes: [InterfaceIndex: String] = [:]
    private var nextOverrunNotice = 0.0

    /// The profile in force (it changes on a successful reload).
    public var profile: Profile { mutex.withLock { currentProfile } }

    public init(
        profile: Profile, path: String, logger: Logger, notifier: SystemdNotifier, health: DaemonHealth,
        resyncInterval: Double
    ) {
        currentProfile = profile
        self.path = path
        self.logger = logger
        self.notifier = notifier
        self.health = health
        self.resyncInterval = resyncInterval
        status = DaemonStatus(pid: getpid(), startedAt: DaemonStatus.now(), profile: path)
        vipSet = Set(profile.vips.map(\.address))
    }

    /// The profile's VIPs, to notice one added by someone else (on an ARPing interface, say).
    private var vipSet: Set<IPAddress> = []

    /// Whether the host matched the profile at the last pass.
    private var converged: Bool { health.snapshot.notConverged == nil }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) { self.requestReload() }
            }
            group.addTask { try await self.runLoopThread() }
            try await group.next()  // the loop ended: stop listening for SIGHUP too
            group.cancelAll()
        }
    }

    public func shutdown() { mutex.withLock { stopRequested = true } }
    public func requestReload() { mutex.withLock { reloadRequested = true } }
    /// Asks for a pass soon (the admin state changed, for instance).
    public func requestConverge(cause: String) { mutex.withLock { requestedCauses.append(cause) } }

    private func runLoopThread() async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            startThread(name: "rsagent-reconcile") {
                do { try self.loop(); done.resume() } catch { done.resume(throwing: error) }
            }
        }
    }

    private func loop() throws {
        let host = try KernelHost()
        let events = try EventSocket()
        converge(host, causes: ["start"])
        logger.info(
            "running: watching links, addresses and rp_filter; ARP sysctls (and FOU ports) re-read every 0.5 s; full check every \(Int(resyncInterval)) s"
        )
        // Start-up is over (listeners bound, first pass done): its code need not stay resident.
        let pagedOut = pageOutStartupCode()
        logger.debug("start-up code paged out (\(pagedOut >> 20) MB of mappings advised)")
        var nextFull = monotonicSeconds() + resyncInterval
        var nextWatchdog = monotonicSeconds()
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
            if let interval = notifier.watchdogInterval, monotonicSeconds() >= nextWatchdog {
                notifier.notify("WATCHDOG=1")
                nextWatchdog = monotonicSeconds() + interval
            }
            var causes = requested
            do {
                // Device names are looked up once per batch: a flush of 1,000 VIPs is one dump.
                var names: [InterfaceIndex: String]?
                let converged = self.converged
                causes += try events.wait(timeout: requested.isEmpty ? 0.25 : 0).compactMap {
                    cause(of: $0, host: host, names: &names, converged: converged)
                }
            } catch {
                causes = ["netlink event socket: \(error); re-reading everything"]
            }
            let now = monotonicSeconds()
            if now >= nextSysctlRead {
                causes += sysctlDrift(host) + tunnelDrift(host)
                nextSysctlRead = now + 0.5
            }
            if now >= nextFull {
                causes.append("periodic check")
                nextFull = now + resyncInterval
            } else if !converged && now >= nextRetry && causes.isEmpty {
                // Some ends of a conflict raise no event we watch (a default route, a state_dir
                // made writable): look again every two seconds until the host matches.
                causes.append("retry")
            }
            if !causes.isEmpty { converge(host, causes: causes) }
        }
        logger.info("stopping")
    }

    /// Why an event may need a repair, or nil when it cannot concern the profile.
    private func cause(
        of event: NetlinkEvent, host: KernelHost, names: inout [InterfaceIndex: String]?, converged: Bool
    ) -> String? {
        func name(_ index: InterfaceIndex) -> String {
            if names == nil {
                names = Dictionary(((try? host.socket.links()) ?? []).map { ($0.index, $0.name) }) { a, _ in a }
            }
            return names?[index] ?? "#\(index.rawValue)"
        }
        switch event {
        case .addressRemoved(let a, let by) where a.isOwned:
            if Self.isOwnPort(by) { return nil }  // our own removal of a stale VIP
            let pid = Int32(by & 0x3F_FFFF)
            if by != 0, let command = processSummary(pid), Self.isRsagentDaemon(command) {
                rival = (pid, command)
            }
            let who = Self.describe(port: by, ipv6: !a.address.isIPv4)
            return "\(a.address)/\(a.prefixLength) removed from \(name(a.index)) by \(who)"
        case .addressAdded(let a) where !a.isOwned && (!converged || vipSet.contains(a.address)):
            // Someone put a VIP on another device (a conflict that starts now), or anything
            // changed while the host does not match the profile.
            return "\(a.address)/\(a.prefixLength) added on \(name(a.index))\(converged ? "" : " while not converged")"
        case .addressRemoved(let a, _) where !converged && !a.isOwned:
            return "\(a.address)/\(a.prefixLength) removed from \(name(a.index)) while not converged"
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
        case .link(_, let dev, let isUp, let removed):
            let p = profile
            if !converged {
                return "device \(dev) \(removed ? "was deleted" : isUp ? "is up" : "went down") while not converged"
            }
            guard
                dev == p.deviceName || (p.interfaces ?? facing).contains(dev)
                    || decapDevices.contains(dev)
            else { return nil }
            return removed ? "device \(dev) was deleted" : (isUp ? nil : "device \(dev) went down")
        case .netconf(let index, let rp):
            let dev = index == -1 ? "all" : index == -2 ? "default" : name(InterfaceIndex(rawValue: index))
            return "rp_filter changed on \(dev) (now \(rp.map(String.init) ?? "?"))"
        case .overrun:
            // Said even when nothing turns out to need repair; at most every 10 s in an event storm.
            if monotonicSeconds() >= nextOverrunNotice {
                logger.notice("netlink events were lost (receive queue overrun); re-reading everything")
                nextOverrunNotice = monotonicSeconds() + 10
            }
            return "netlink overrun (events lost): re-reading everything"
        default:
            return nil
        }
    }

    /// `rsagent run …` (another daemon), as `processSummary` shows it.
    static func isRsagentDaemon(_ command: String) -> Bool {
        let words = command.split(separator: " ")
        return words.first == "rsagent" && words.dropFirst().first == "run"
    }

    /// libnl numbers its sockets pid + n << 22; rsagent's own requests must not look foreign.
    static func isOwnPort(_ port: UInt32) -> Bool { port != 0 && Int32(port & 0x3F_FFFF) == getpid() }

    /// Who removed an address, from the notification's netlink port. The kernel names the
    /// requester for IPv4 only: every IPv6 removal arrives with port 0.
    static func describe(port: UInt32, ipv6: Bool = false) -> String {
        if port == 0 {
            return ipv6 ? "another program or the kernel (IPv6 removals do not name the remover)" : "the kernel"
        }
        let pid = Int32(port & 0x3F_FFFF)
        if let comm = readTextFile("/proc/\(pid)/comm") {
            return "pid \(pid) (\(comm.trimmed))"
        }
        return "netlink port \(port) (process gone)"
    }

    /// Re-reads the sysctls the last pass asserted; a cause per one that drifted. The kernel
    /// sends no event when `arp_ignore` or `arp_announce` change, and a window with
    /// `arp_ignore=0` is exactly the ARP problem, so a few small reads twice a second close it.
    private func sysctlDrift(_ host: KernelHost) -> [String] {
        guard converged, !asserted.isEmpty else { return [] }
        var values: [SysctlKey: Int] = [:]
        for k in asserted { if let v = try? host.readSysctl(k) { values[k] = v } }
        return Planner.sysctlDrift(profile, interfaces: facing, values: values).compactMap {
            guard case let .setSysctl(key, from, to) = $0 else { return nil }
            let now = from.map(String.init) ?? "unreadable"
            return "\(key) is \(now) but the profile needs \(to) (changed by hand: the kernel announces no such change)"
        }
    }

    /// Re-reads the FOU ports and the MSS clamp the profile needs; a cause per one that is
    /// gone or changed. Nothing announces those changes to rsagent (generic netlink has no FOU
    /// events; an nftables monitor would be one more socket), so they are read with the
    /// sysctls, twice a second: a dump each, only when the profile has them.
    private func tunnelDrift(_ host: KernelHost) -> [String] {
        guard converged else { return [] }
        var causes: [String] = []
        if !assertedFOUPorts.isEmpty {
            do {
                let present = try host.observeFOUPorts()
                causes += assertedFOUPorts.filter { !present.contains($0) }.map {
                    "FOU port \($0) is gone (deleted by hand: the kernel announces no such change)"
                }
            } catch {
                causes.append("reading the FOU ports failed: \(error)")
            }
        }
        if let wanted = assertedMSS {
            let present = MSSRuleset.owned(in: (try? NFTables.inetTables()) ?? [])
            if present?.comment != wanted {
                causes.append(
                    "the MSS clamp (nftables table inet \(MSSRuleset.table)) is \(present == nil ? "gone" : "changed")")
            }
        }
        return causes
    }

    private func converge(_ host: KernelHost, causes: [String]) {
        nextRetry = monotonicSeconds() + 2
        let p = profile
        let admin = DaemonSignals.adminState(p.stateDir)
        let held = fileExists(DaemonSignals.heldPath(p.stateDir))
        health.update { $0.held = held }
        let paused = admin == .maint ? "maint" : held ? "held down by `rsagent down`" : nil
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
        if let r = rival {
            if kill(r.pid, 0) == 0 {
                // Putting the VIPs back would start a loop: each daemon removes the other's as stale.
                settle(
                    notConverged:
                        "another rsagent daemon (pid \(r.pid) `\(r.command)`) removes this profile's VIPs in the same network namespace; not fighting it — stop one of them (one rsagent per namespace; merge VIPs with `include:`)",
                    problems: [])
                return
            }
            logger.notice("the other rsagent daemon (pid \(r.pid)) is gone; re-asserting")
            rival = nil
        }
        let observed: HostState
        let result: ApplyResult
        do {
            observed = try host.observe()
            result = try Operations.apply(
                profile: p, path: path, host: host, observed: observed, dryRun: false, adopt: false)
        } catch {
            settle(notConverged: "checking the host failed: \(error)", problems: [])
            return
        }
        facing = result.interfaces
        asserted = Planner.assertedSysctlKeys(p, interfaces: facing)
        let decap = p.decapsulation(facing: facing)
        decapDevices = Set(decap?.devices.map(\.name) ?? [])
        assertedFOUPorts = decap?.fouPorts ?? []
        assertedMSS =
            MSSRuleset(p, facingMTU: result.interfaces.compactMap { observed.link(named: $0)?.mtu }.min())?.comment
        // From the links this pass observed. A renamed device keeps its old entry until its
        // rename event is seen: the pass may run between the rename and the event.
        let links = host.linkIndexes, names = Set(facing + (profile.interfaces ?? []))
        let present = Set(links.values)
        facingIndexes = facingIndexes.filter { present.contains($0.key) && names.contains($0.value) }
        for (name, index) in links where names.contains(name) { facingIndexes[index] = name }
        let problems = result.conflicts.map(\.message) + result.errors
        let ok = result.result == .converged || result.result == .unchanged
        // What directors and /metrics see: read again after changes, so it is what the kernel holds.
        let after = result.done.isEmpty ? observed : ((try? host.observe()) ?? observed)
        // A repair puts back what drifted from a converged host; the first changes after start,
        // a reload or the end of a conflict are the profile being applied.
        let reloaded = causes.contains("profile reloaded")
        let isRepair = converged && !causes.contains("start") && !reloaded
        health.update { h in
            h.conflicts = result.conflicts.count
            h.record(after, profile: p, interfaces: facing)
            if isRepair { for a in result.done { h.repairs[a.repairCategory, default: 0] += 1 } }
        }
        settle(notConverged: ok ? nil : Self.reason(result), problems: problems)
        guard !result.done.isEmpty else { return }
        let what = result.actions.filter { $0.status == .done }.map(\.summary).joined(separator: "; ")
        if reloaded {
            logger.notice("applied the reloaded profile: \(what)")
        } else if !isRepair {
            let why = causes == ["start"] ? "" : " (cause: \(causes.joined(separator: "; ")))"
            logger.info("applied \(path): \(what)\(why)")
        } else {
            let why = causes.joined(separator: "; ")
            logger.warning("repaired: \(what) (cause: \(why))")
            status.repairs += 1
            status.lastRepairAt = DaemonStatus.now()
            status.lastRepair = "\(what) (cause: \(why))"
        }
        status.save(stateDir: profile.stateDir)
    }

    /// One line for directors: why this host does not match the profile.
    static func reason(_ r: ApplyResult) -> String {
        let first = r.conflicts.first?.message ?? r.errors.first ?? r.result.rawValue
        let more = r.conflicts.count + r.errors.count - 1
        let head = r.result == .conflict ? "conflict" : "apply failed"
        return "\(head): \(first)\(more > 0 ? " (and \(more) more: see `rsagent status`)" : "")"
    }

    /// Records whether the host matches the profile; says so in the log (once per change), in
    /// `status`, to systemd and, through `health`, to directors.
    private func settle(notConverged why: String?, problems given: [String]) {
        let problems = given.isEmpty ? (why.map { [$0] } ?? []) : given
        if problems != lastProblems {
            for m in problems { logger.error("\(m)") }
            if why != nil && !problems.isEmpty {
                logger.error("out of service until this is fixed: directors are told down, weight 0")
            }
            lastProblems = problems
        }
        let was = health.snapshot.notConverged
        health.update { $0.notConverged = why }
        if let why {
            if was != why { notifier.notify("STATUS=not converged: \(LoadReport.oneLine(why, max: 200))") }
        } else {
            if was != nil && was != HealthSnapshot.starting {
                logger.notice("converged: the host matches \(path) again")
            }
            if !toldReady {
                notifier.notify("READY=1\nSTATUS=converged to \(path)")
                toldReady = true
            } else if was != nil {
                notifier.notify("STATUS=converged to \(path)")
            }
        }
        if status.notConverged != why {
            status.notConverged = why
            status.save(stateDir: profile.stateDir)
        }
    }

    private func reload(_ host: KernelHost) {
        let old = profile
        do {
            let new = try ProfileDecoder.load(path: path)
            if new.stateDir != old.stateDir {
                health.update { $0.lastReload = (false, wallSeconds()) }
                logger.error(
                    "reload refused: state_dir changed from \(old.stateDir) to \(new.stateDir), and state_dir changes need a restart (rsagent's record of the sysctls it changed and the admin state live there); keeping the running profile — to move it, stop rsagent, move the directory, and start it again"
                )
                return
            }
            let later = Self.restartOnlyChanges(old, new)
            mutex.withLock { currentProfile = new }
            vipSet = Set(new.vips.map(\.address))
            health.update { $0.lastReload = (true, wallSeconds()) }
            logger.notice("reloaded \(path)")
            if !later.isEmpty {
                logger.warning(
                    "\(later.joined(separator: ", ")) changed in the reloaded profile; listeners stay where they are until rsagent run restarts (systemctl restart rsagent)"
                )
            }
            notifier.notify("STATUS=reloaded \(path)")
            converge(host, causes: ["profile reloaded"])
        } catch let e as ProfileError {
            health.update { $0.lastReload = (false, wallSeconds()) }
            for p in e.problems { logger.error("reload rejected: \(p)") }
            logger.error("keeping the running profile; fix \(path) and send SIGHUP again")
        } catch {
            health.update { $0.lastReload = (false, wallSeconds()) }
            logger.error("reload failed: \(error); keeping the running profile")
        }
    }

    /// Keys whose listeners are bound once, at start: a reload cannot move them.
    static func restartOnlyChanges(_ old: Profile, _ new: Profile) -> [String] {
        var out: [String] = []
        if old.load?.http != new.load?.http { out.append("load.http") }
        if old.load?.agentCheck != new.load?.agentCheck { out.append("load.agent_check") }
        if (old.load?.allow ?? []) != (new.load?.allow ?? []) { out.append("load.allow") }
        if old.testService != new.testService { out.append("test_service") }
        return out
    }

    /// Writes the first status file, so `status` sees the daemon from its first moment.
    public func announce() {
        unlink(DaemonSignals.heldPath(profile.stateDir))
        try? StateStore(directory: profile.stateDir).makeDirectory()
        status.save(stateDir: profile.stateDir)
    }

    /// Removes the status file when the daemon ends.
    public func retire() { unlink(DaemonStatus.path(profile.stateDir)) }
}
