import Foundation

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

    enum CodingKeys: String, CodingKey {
        case pid, startedAt = "started_at", profile, repairs, lastRepairAt = "last_repair_at"
        case lastRepair = "last_repair", paused
    }

    /// Now, ISO 8601 in UTC.
    static func now() -> String { isoTime(wallSeconds()) }

    static func path(_ stateDir: String) -> String { stateDir + "/daemon.json" }

    func save(stateDir: String) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        guard let data = try? enc.encode(self) else { return }
        // Best effort: status is for `rsagent status`; a full state_dir must not stop repairs.
        try? writeAtomically(data, to: Self.path(stateDir))
    }

    /// The status of a daemon that is still running, or nil.
    public static func load(stateDir: String) -> DaemonStatus? {
        guard let data = (readFile(path(stateDir)).map { Data($0) }),
            let s = try? JSONDecoder().decode(DaemonStatus.self, from: data),
            kill(s.pid, 0) == 0
        else { return nil }
        return s
    }
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

    public static func adminState(_ stateDir: String) -> String {
        let s = readTextFile(adminPath(stateDir))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return s.flatMap { ["ready", "drain", "maint"].contains($0) ? $0 : nil } ?? "ready"
    }
}
