import Logging
import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// The realserver's own address (RIP): the first address on the interface facing the director
/// that rsagent did not add — IPv4 before IPv6, never link-local.
public func primaryAddress(in state: HostState, profile: Profile) -> IPAddress? {
    guard let name = profile.interfaces?.first ?? state.defaultRouteInterface, let link = state.link(named: name)
    else { return nil }
    let linkLocal = IPAddress("fe80::")!
    let candidates = state.addresses.filter {
        $0.index == link.index && !$0.isOwned && !$0.address.isInside(linkLocal, prefix: 10)
    }
    return (candidates.first { $0.address.isIPv4 } ?? candidates.first)?.address
}

/// `primaryAddress` of the running host: one link and address dump.
public func lookUpPrimaryAddress(profile: Profile) -> IPAddress? {
    (try? KernelHost().observeAddressesOnly()).flatMap { primaryAddress(in: $0, profile: profile) }
}

/// The load report as it stands, shared by the sampling loop, the admin socket and the
/// listeners. Every read is a copy taken under the lock.
public final class LoadBoard: @unchecked Sendable {
    private let lock = Lock()
    private var policy: WeightPolicy
    private var admin: AdminState
    private var current: LoadReport?
    /// What the reconciler knows; applied to every report as it is read.
    public let health: DaemonHealth
    /// Connections each load-report listener holds at once.
    public static let connectionCap = 256
    /// Admission for the load report's listeners.
    public let gate = ConnectionGate(cap: LoadBoard.connectionCap)

    private var slowStart: SlowStart
    /// Who reads the report: a drain waits for them to have seen it.
    private var reads = DirectorReads()
    /// Where the slow start's beginning is kept across restarts (`state_dir/slow-start`); nil
    /// keeps it in memory only.
    private let slowStartPath: String?

    public init(
        settings: LoadSettings, admin: AdminState, health: DaemonHealth, stateDir: String? = nil,
        now: Double = wallSeconds()
    ) {
        policy = WeightPolicy(settings: settings)
        self.admin = admin
        self.health = health
        slowStartPath = stateDir.map { $0 + "/slow-start" }
        // Starting in `ready` is entering it: ramp, or resume a ramp a restart interrupted.
        let persisted = slowStartPath.flatMap { path in
            (try? readSmallFile(path, operation: "reading \(path)")).flatMap { $0 }.flatMap { Double($0.trimmed) }
        }
        slowStart =
            admin == .ready && settings.slowStart > 0
            ? SlowStart.resuming(window: settings.slowStart, persisted: persisted, at: now)
            : SlowStart(window: settings.slowStart)
        if let began = slowStart.began, began != persisted { persistSlowStart(began) }
    }

    private func persistSlowStart(_ began: Double) {
        guard let slowStartPath else { return }
        try? writeAtomically(Array("\(began)\n".utf8), to: slowStartPath)
    }

    /// `weight` as directors must see it at `now`: on its ramp while slow start runs.
    private func ramped(_ r: inout LoadReport, minimum: Int, at now: Double) {
        r.slowStart = slowStart.status(at: now)
        if admin == .ready { r.weight = slowStart.weight(r.weight, minimum: minimum, at: now) }
    }

    /// The report as directors see it now: the last sample, with the admin state and the
    /// reconciler's verdict applied at once (a conflict must not wait for the next sample).
    public var report: LoadReport? {
        let h = health.snapshot
        return lock.withLock { current }?.serving(h)
    }

    /// Feeds a sample through the weight policy; returns the new report and the decision.
    @discardableResult
    public func record(
        _ sample: LoadSample, settings: LoadSettings, host: String, rip: IPAddress?
    ) -> (LoadReport, WeightPolicy.Decision) {
        lock.withLock {
            policy.reconfigure(settings)
            let d = policy.update(sample, admin: admin)
            var r = LoadReport(
                host: host, rip: rip?.description, admin: admin, sample: sample, decision: d,
                interval: settings.interval)
            r.weightMin = settings.weightMin
            r.weightMax = settings.weightMax
            slowStart.window = settings.slowStart
            ramped(&r, minimum: settings.weightMin, at: sample.time)
            current = r
            return (r, d)
        }
    }

    /// A new admin state takes effect at once, without waiting for the next sample.
    public func setAdmin(_ state: AdminState, now: Double = wallSeconds()) {
        lock.withLock {
            if state != .ready && state != admin { reads.stateChanged(at: monotonicSeconds()) }
            if state == .ready && admin != .ready && slowStart.window > 0 {
                slowStart.began = now
                persistSlowStart(now)
            }
            admin = state
            guard var r = current?.with(admin: state, weight: policy.weight(admin: state)) else { return }
            ramped(&r, minimum: r.weightMin, at: now)
            current = r
        }
    }

    /// A director (`peer`) read the weight: `/load`, `/weight` or the agent-check line.
    public func noteRead(by peer: IPAddress?) {
        guard let peer else { return }
        let now = monotonicSeconds()
        lock.withLock { reads.read(by: peer, at: now) }
    }

    /// The directors that have not yet seen the last drain or maint (see `DirectorReads`).
    public var pendingDirectors: [String] {
        let now = monotonicSeconds()
        return lock.withLock { reads.pending(at: now) }
    }

}

/// The sampling loop: one `LoadSample` per `load.interval`, fed to the board; weight changes
/// are logged. The sampler blocks for a few milliseconds (netlink, /proc), so it runs on a
/// thread of its own rather than on the cooperative pool.
public final class LoadMonitor: DaemonService, @unchecked Sendable {
    public let board: LoadBoard
    private let sampler = LoadSampler()
    private let profile: @Sendable () -> Profile
    private let logger: Logger
    private let host: String
    private var rip: IPAddress?
    /// The facing interfaces the RIP was looked up for (`nil` inside: the default route's).
    private var ripLookedUpFor: [String]??
    private let stopLock = Lock()
    private var stopping = false
    private var isStopping: Bool { stopLock.withLock { stopping } }

    /// `profile` gives the profile in force (it changes on SIGHUP).
    public init(board: LoadBoard, logger: Logger, profile: @escaping @Sendable () -> Profile) {
        self.board = board
        self.logger = logger
        self.profile = profile
        host = hostName()
    }

    /// One sample now; the daemon takes the first before it starts listening, so no reader
    /// ever sees an empty report.
    public func sampleOnce() throws {
        let p = profile()
        // The RIP depends on the facing interface: look again only when a reload changes it
        // (comparing the interfaces, not the whole profile with every VIP, each second).
        if ripLookedUpFor != .some(p.interfaces) {
            rip = lookUpPrimaryAddress(profile: p)
            ripLookedUpFor = .some(p.interfaces)
        }
        // Thresholds, clamps and smoothing follow a reload; the listeners stay where they were
        // bound (the reconciler says so when a reload moves them).
        let settings = p.load ?? LoadSettings()
        let sample = try sampler.sample(vips: p.vips)
        let (r, d) = board.record(sample, settings: settings, host: host, rip: rip)
        if d.changed {
            let why = d.limitedBy.map { ", limited by \($0.rawValue)" } ?? ""
            logger.notice("load report: weight \(r.weight) (capacity \(Int(d.target.rounded()))%\(why))")
        }
    }

    public func shutdown() { stopLock.withLock { stopping = true } }

    public func run() async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            startThread(name: "rsagent-load") {
                var lastError = ""
                while !self.isStopping {
                    do {
                        try self.sampleOnce()
                        lastError = ""
                    } catch {
                        // Said once per distinct failure, not once a second.
                        if "\(error)" != lastError { self.logger.error("load report: \(error)") }
                        lastError = "\(error)"
                    }
                    let interval = self.profile().load?.interval ?? 1
                    let until = monotonicSeconds() + interval
                    while !self.isStopping && monotonicSeconds() < until {
                        usleep(UInt32(min(0.1, max(0.001, until - monotonicSeconds())) * 1e6))
                    }
                }
                done.resume()
            }
        }
    }
}

func hostName() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    guard gethostname(&buf, buf.count - 1) == 0 else { return "unknown" }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The load report's two services, made ready before the daemon's service group starts: the
/// first sample is taken and the listeners are bound, so a taken port stops the daemon at once
/// with one sentence and no reader ever sees an empty report.
public struct LoadReportServices: Sendable {
    public let monitor: LoadMonitor
    public let server: LoadServer

    /// nil when the profile has no `load.http` and no `load.agent_check`.
    public static func start(
        profile: Profile, health: DaemonHealth, logger: Logger, current: @escaping @Sendable () -> Profile
    ) async throws -> LoadReportServices? {
        guard let settings = profile.load, settings.http != nil || settings.agentCheck != nil else { return nil }
        let admin = DaemonSignals.adminState(profile.stateDir)
        let monitor = LoadMonitor(
            board: LoadBoard(settings: settings, admin: admin, health: health, stateDir: profile.stateDir),
            logger: logger, profile: current)
        do { try monitor.sampleOnce() } catch { logger.error("load report: \(error)") }
        let server = try LoadServer(board: monitor.board, settings: settings, logger: logger)
        try server.bind()
        return LoadReportServices(monitor: monitor, server: server)
    }
}
