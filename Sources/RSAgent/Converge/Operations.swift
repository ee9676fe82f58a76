import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// What became of one planned action. The raw values are the JSON words.
public enum ActionStatus: String, Codable, Sendable {
    case planned, done, failed
    case rolledBack = "rolled_back"
    case notRun = "not_run"
}

/// One action in a JSON report.
public struct ActionReport: Codable, Sendable {
    public var kind: String
    public var summary: String
    public var status: ActionStatus
    public var error: String?
    /// + adds, - removes, ~ changes (`Action.sign`); for people, not in the JSON.
    public var sign: String = "~"

    enum CodingKeys: String, CodingKey { case kind, summary, status, error }

    init(_ action: Action, _ status: ActionStatus, error: String? = nil) {
        kind = action.kind
        summary = action.summary
        self.status = status
        self.error = error
        sign = action.sign
    }
}

/// How an apply ended. The raw values are the JSON words.
public enum ApplyOutcome: String, Codable, Sendable {
    /// The host already matched: nothing done.
    case unchanged
    /// A dry run: the actions are planned, nothing done.
    case planned
    case converged
    /// The profile cannot be applied to this host as it is: nothing done.
    case conflict
    /// A change failed and every change of this run was undone.
    case rolledBack = "rolled_back"
    /// A change failed and some could not be undone.
    case partial
}

/// How a down ended. The raw values are the JSON words.
public enum DownOutcome: String, Codable, Sendable {
    case unchanged, removed, partial
    /// Another rsagent owns this namespace: nothing was touched.
    case conflict
}

/// `rsagent apply --json` (schema `rsagent.apply/1`, see README).
public struct ApplyResult: Codable, Sendable {
    public var schema = "rsagent.apply/1"
    public var profile: String
    public var dryRun: Bool
    public var result: ApplyOutcome
    public var interfaces: [String]
    public var actions: [ActionReport]
    public var conflicts: [Conflict]
    public var errors: [String]
    public var warnings: [String]
    /// The actions carried out, typed (not in the JSON: `actions` says the same for people).
    public var done: [Action] = []

    enum CodingKeys: String, CodingKey {
        case schema, profile, dryRun = "dry_run", result, interfaces, actions, conflicts, errors, warnings
    }

    /// DESIGN.md: 0 converged, 1 runtime failure, 2 invalid profile or conflict (nothing touched).
    public var exitCode: Int32 {
        switch result {
        case .unchanged, .planned, .converged: 0
        case .conflict: 2
        case .rolledBack, .partial: 1
        }
    }
}

/// `rsagent down --json` (schema `rsagent.down/1`).
public struct DownResult: Codable, Sendable {
    public var schema = "rsagent.down/1"
    public var result: DownOutcome
    public var actions: [ActionReport]
    public var errors: [String]
    public var warnings: [String]
    public var exitCode: Int32 {
        switch result {
        case .partial: 1
        case .conflict: 2
        case .unchanged, .removed: 0
        }
    }
}

/// The operations behind the CLI, kept out of the executable so the daemon reuses them.
public enum Operations {
    /// Plans and (unless `dryRun`) applies. `observed` may be passed when the caller read the
    /// host already (the CLI does so while the profile is decoded on another thread).
    public static func apply(
        profile: Profile, path: String, host: any HostSystem, observed: HostState? = nil,
        dryRun: Bool, adopt: Bool
    ) throws -> ApplyResult {
        let store = StateStore(directory: profile.stateDir)
        // A dry run changes nothing and takes no lock. Otherwise: if another run held the lock,
        // it changed the host meanwhile, so what was read before is read again.
        let lock = dryRun ? nil : try store.lock()
        var remembered = true
        defer {
            // Nothing to remember (no state before or after: only addresses, whose mark is in
            // the kernel, or a rolled-back first apply): leave no state file behind.
            if lock != nil && !remembered { store.clear() }
            withExtendedLifetime(lock) {}
        }
        let state = try store.load()
        remembered = !state.isEmpty
        let observed = try (lock?.waited == true ? nil : observed) ?? host.observe()
        var plan = Planner.plan(profile, host: observed, state: state, options: .init(adopt: adopt))
        // One rsagent per namespace: another state_dir's VIPs would look stale here.
        if let owner = NamespaceClaims.check(
            stateDir: profile.stateDir, markedAddresses: !observed.ownedAddresses.isEmpty)
        {
            plan.conflicts.insert(Conflict(id: "namespace.owner", message: owner.refusal), at: 0)
        }
        var r = ApplyResult(
            profile: path, dryRun: dryRun, result: .unchanged, interfaces: plan.interfaces,
            actions: [], conflicts: plan.conflicts, errors: [], warnings: plan.warnings)
        if !plan.conflicts.isEmpty {
            r.result = .conflict
            r.actions = plan.actions.map { ActionReport($0, .notRun) }
            return r
        }
        if !dryRun {
            if let warning = NamespaceClaims.claim(stateDir: profile.stateDir, profile: path) {
                r.warnings.append(warning)
            }
            // An explicit apply ends a hold set by `rsagent down` (the daemon resumes re-asserting).
            unlink(DaemonSignals.heldPath(profile.stateDir))
        }
        if plan.actions.isEmpty { r.result = .unchanged; return r }
        if dryRun {
            r.result = .planned
            r.actions = plan.actions.map { ActionReport($0, .planned) }
            return r
        }
        let executor = Executor(host: host, store: store, state: state)
        let report = executor.apply(plan.actions)
        remembered = !executor.state.isEmpty || !state.isEmpty
        r.actions = actionReports(plan.actions, report)
        r.done = report.outcome == .converged ? report.done : []
        r.errors =
            report.failures.map { Explain.sentence($0.action, $0.error) }
            + report.rollbackFailures.map { "rolling back: " + Explain.sentence($0.action, $0.error) }
        r.result =
            switch report.outcome {
            case .converged: .converged
            case .rolledBack: .rolledBack
            case .partial: .partial
            }
        return r
    }

    public static func down(stateDir: String, host: any HostSystem) throws -> DownResult {
        let store = StateStore(directory: stateDir)
        let lock = try store.lock()
        defer { withExtendedLifetime(lock) {} }
        let observed = try host.observe()
        // Every marked address in the namespace would go: only its owner may take it down.
        if let owner = NamespaceClaims.check(stateDir: stateDir, markedAddresses: !observed.ownedAddresses.isEmpty) {
            return DownResult(result: .conflict, actions: [], errors: [owner.refusal], warnings: [])
        }
        // A running daemon must not put back what the operator is taking down.
        if DaemonStatus.load(stateDir: stateDir) != nil {
            _ = writeSmallFile("down\n", to: DaemonSignals.heldPath(stateDir))
        }
        let state = try store.load()
        let plan = Planner.planDown(host: observed, state: state)
        let report = Executor(host: host, store: store, state: state).down(plan)
        if report.failures.isEmpty { NamespaceClaims.release(stateDir: stateDir) }
        return DownResult(
            result: !report.failures.isEmpty ? .partial : plan.actions.isEmpty ? .unchanged : .removed,
            actions: actionReports(plan.actions, report),
            errors: report.failures.map { Explain.sentence($0.action, $0.error) },
            warnings: report.warnings)
    }

    static func actionReports(_ actions: [Action], _ report: ExecutionReport) -> [ActionReport] {
        // Index by position: the same action value never appears twice in one plan.
        let done = Set(report.done), rolled = Set(report.rolledBack)
        let failed = Dictionary(
            report.failures.map { ($0.action, Explain.sentence($0.action, $0.error)) },
            uniquingKeysWith: { a, _ in a })
        return actions.map { a in
            let status: ActionStatus =
                rolled.contains(a) ? .rolledBack : done.contains(a) ? .done : failed[a] != nil ? .failed : .notRun
            return ActionReport(a, status, error: failed[a])
        }
    }
}
