import ArgumentParser
import Logging
import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "The daemon: apply, then keep the host converged; reload on SIGHUP.",
        discussion: """
            Re-asserts the profile when an owned VIP disappears, the VIP device or a facing \
            interface goes down, or rp_filter changes (netlink events), and on a periodic full \
            check. Pauses while the admin state is maint or after `rsagent down`. SIGHUP re-reads \
            the profile (an invalid one is reported and the running one kept); SIGTERM/SIGINT \
            stop, leaving the VIPs (on_stop: keep) or removing them (on_stop: remove). Tells \
            systemd READY/STOPPING (Type=notify) and keeps its watchdog fed when asked.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var profileOption: ProfileOption
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"
    @Option(help: ArgumentHelp("Seconds between full checks (arp_* changes raise no event).", valueName: "SECONDS"))
    var resyncInterval: Double = 30
    @Option(help: ArgumentHelp("The admin socket (default: STATE_DIR/admin.sock).", valueName: "PATH"))
    var socket: String?

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level \(logLevel) is not one of trace, debug, info, notice, warning, error, critical")
        }
        guard resyncInterval >= 1 else { throw ValidationError("--resync-interval must be at least 1 second") }
    }

    /// The daemon's services, started in this order and stopped in reverse: the reconciler,
    /// then the load report (its sampler and its listeners) and the test service when the
    /// profile enables them. Only the reconciler changes the host.
    static func services(reconciler: Reconciler, load: LoadReportServices?, test: TestServer?)
        -> [any DaemonService]
    {
        var out: [any DaemonService] = [reconciler]
        if let load { out += [load.monitor, load.server] }
        if let test { out.append(test) }
        return out
    }

    func run() async throws {
        try global.enterNamespace()
        let profile = try profileOption.load()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        // One event per line on stderr: journald stamps and stores it.
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "rsagent")
        // One daemon per state_dir, before anything of the first one's is touched (its status
        // file, held-down mark, admin socket).
        let daemonLock: DaemonLock
        do { daemonLock = try DaemonLock.acquire(stateDir: profile.stateDir) } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        defer { withExtendedLifetime(daemonLock) {} }
        // One rsagent per network namespace: refuse at once rather than run out of service.
        let marked = (try? KernelHost().observeAddressesOnly()).map { !$0.ownedAddresses.isEmpty } ?? false
        if let owner = NamespaceClaims.check(stateDir: profile.stateDir, markedAddresses: marked) {
            logger.critical("starting rsagent run with state_dir \(profile.stateDir): \(owner.refusal)")
            throw ExitCode(1)
        }
        ensureDescriptorRoom(profile, logger: logger)
        let notifier = SystemdNotifier()
        let health = DaemonHealth()
        let reconciler = Reconciler(
            profile: profile, path: profileOption.profile, logger: logger, notifier: notifier, health: health,
            resyncInterval: resyncInterval)
        reconciler.announce()
        do {
            if let s = try DaemonSignals.applyInitialState(profile) {
                logger.notice(
                    "admin state: \(s.rawValue) (initial_state; `rsagent ready` puts this realserver in service)")
            }
        } catch {
            logger.critical("\(error)")
            reconciler.retire()
            throw ExitCode(1)
        }
        let load: LoadReportServices?
        let test: TestServer?
        do {
            load = try await LoadReportServices.start(profile: profile, health: health, logger: logger) {
                reconciler.profile
            }
            test = try await TestServer.start(profile: profile, logger: logger)
        } catch {
            logger.critical("\(error)")
            reconciler.retire()
            throw ExitCode(1)
        }
        let admin = AdminServer(
            path: socket ?? AdminServer.defaultPath(stateDir: profile.stateDir), stateDir: profile.stateDir,
            logger: logger, services: { ServiceConnections.services(of: reconciler.profile) },
            pendingDirectors: { load?.monitor.board.pendingDirectors ?? [] }
        ) { state in
            load?.monitor.board.setAdmin(state)
            reconciler.requestConverge(cause: "admin state \(state.rawValue)")
        }
        do { try admin.start() } catch {
            logger.critical("\(error)")
            reconciler.retire()
            throw ExitCode(1)
        }
        defer { admin.stop() }
        // on_stop: drain, as the profile says when the signal comes (a reload may change it).
        let board = load?.monitor.board
        let beforeStop: @Sendable (ShutdownLatch) async -> Void = { stop in
            let current = reconciler.profile
            guard current.onStop == .drain else { return }
            await drainBeforeStop(profile: current, board: board, notifier: notifier, logger: logger, stop: stop)
        }
        do {
            try await runServices(
                Self.services(reconciler: reconciler, load: load, test: test), logger: logger, beforeStop: beforeStop)
        } catch {
            logger.error("\(error)")
            reconciler.retire()
            throw ExitCode(1)
        }
        notifier.notify("STOPPING=1")
        let final = reconciler.profile
        if final.onStop == .remove || final.onStop == .drain {
            do {
                let r = try Operations.down(stateDir: final.stateDir, host: try openHost())
                logger.notice("on_stop: \(final.onStop.rawValue): \(r.actions.count) action(s), \(r.result.rawValue)")
                for e in r.errors { logger.error("\(e)") }
            } catch {
                logger.error("on_stop: \(final.onStop.rawValue): removing the VIPs failed: \(error)")
            }
        } else {
            logger.notice("on_stop: keep: VIPs stay in place")
        }
        reconciler.retire()
    }
}
