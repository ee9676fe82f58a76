#if canImport(Glibc)
    import Glibc
#endif

/// What the running daemon reports about itself, in `state_dir/daemon.json`; `rsagent status`
/// shows it while the process is alive.
public struct DaemonStatus: Codable, Sendable, Equatable {
    public var pid: Int32
    /// ISO 8601, UTC.
    public var startedAt: String
    public var profile: String
    public var repairs: Int = 0
    public var lastRepairAt: String?
    /// One line: what was repaired and, when known, what had removed it.
    public var lastRepair: String?
    /// Why the daemon is not re-asserting right now: `maint`, or a deliberate `rsagent down`.
    public var paused: String?
    /// Why the host does not match the profile (directors are told down meanwhile); nil when
    /// it does.
    public var notConverged: String? = HealthSnapshot.starting

    enum CodingKeys: String, CodingKey {
        case pid, startedAt = "started_at", profile, repairs, lastRepairAt = "last_repair_at"
        case lastRepair = "last_repair", paused, notConverged = "not_converged"
    }

    /// Now, ISO 8601 in UTC.
    static func now() -> String { isoTime(wallSeconds()) }

    static func path(_ stateDir: String) -> String { stateDir + "/daemon.json" }

    func save(stateDir: String) {
        guard let data = try? JSON.encode(self) else { return }
        // Best effort: status is for `rsagent status`; a full state_dir must not stop repairs.
        try? writeAtomically(Array(data.utf8), to: Self.path(stateDir))
    }

    /// The status of a daemon that is still running, or nil.
    public static func load(stateDir: String) -> DaemonStatus? {
        guard let data = readTextFile(path(stateDir)),
            let s = try? JSON.decode(DaemonStatus.self, from: data),
            kill(s.pid, 0) == 0
        else { return nil }
        return s
    }
}

/// `state_dir/daemon.lock`, held by the one `rsagent run` of a state_dir for its whole life: a
/// second daemon on the same state_dir exits at once instead of taking over the admin socket.
public final class DaemonLock {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    public static func path(_ stateDir: String) -> String { stateDir + "/daemon.lock" }

    /// Takes the lock, or says which process holds it.
    public static func acquire(stateDir: String) throws -> DaemonLock {
        try StateStore(directory: stateDir).makeDirectory()
        let p = path(stateDir)
        let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError(path: p, errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = readTextFile(p).flatMap { Int32($0.trimmed) }
            close(fd)
            let who = holder.map { "pid \($0)\(processSummary($0).map { " (\($0))" } ?? "")" } ?? "another process"
            throw SystemError(
                operation: "starting rsagent run with state_dir \(stateDir)", errno: EWOULDBLOCK,
                reason:
                    "\(who) already runs there and keeps this host; only one daemon per state_dir — stop it first (systemctl stop rsagent), or use its admin socket (rsagent drain/maint/ready)"
            )
        }
        // The holder's pid, for the sentence above (truncate then write: one short line).
        _ = ftruncate(fd, 0)
        let line = Array("\(getpid())\n".utf8)
        _ = pwrite(fd, line, line.count, 0)
        return DaemonLock(fd: fd)
    }
}

/// `pid N`'s command line, shortened for messages (`rsagent run -c /etc/rsagent/rsagent.yaml`).
func processSummary(_ pid: Int32) -> String? {
    guard let raw = readFile("/proc/\(pid)/cmdline"), !raw.isEmpty else { return nil }
    let words = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    guard var first = words.first else { return nil }
    if let slash = first.lastIndex(of: "/") { first = String(first[first.index(after: slash)...]) }
    return LoadReport.oneLine(([first] + words.dropFirst()).joined(separator: " "), max: 120)
}

/// Files in `state_dir` through which `down` and the admin state speak to a running daemon.
public enum DaemonSignals {
    /// Present while a deliberate `rsagent down` holds the host down: the daemon must not put
    /// the VIPs back. `apply` and a daemon start remove it.
    public static func heldPath(_ stateDir: String) -> String { stateDir + "/held-down" }
    /// `ready | drain | maint`; missing means ready.
    public static func adminPath(_ stateDir: String) -> String { stateDir + "/admin-state" }

    /// On a daemon's first start (no admin state saved yet) a profile's `initial_state: drain`
    /// is saved, so the reconciler, the load report and `status` all agree from the start.
    /// Returns the state saved, if any.
    public static func applyInitialState(_ profile: Profile) throws -> AdminState? {
        guard profile.initialState != .ready, access(adminPath(profile.stateDir), F_OK) != 0 else { return nil }
        try AdminServer.persist(profile.initialState, stateDir: profile.stateDir)
        return profile.initialState
    }

    public static func adminState(_ stateDir: String) -> AdminState {
        readTextFile(adminPath(stateDir)).flatMap { AdminState(rawValue: $0.trimmed) } ?? .ready
    }
}
