#if canImport(Glibc)
    import Glibc
#endif

/// The use cases behind the commands: each takes a profile and a host and returns a typed
/// report; the caller renders it (text or JSON in the CLI, log lines in the daemon).
public enum Operations {}

extension Operations {
    /// `rsagent apply`: plans and, unless `dryRun`, carries out the plan under the state lock.
    /// `observed` may be passed when the caller read the host already (the CLI does so while the
    /// profile is decoded on another thread).
    public static func apply(
        profile: Profile, path: String, host: any HostSystem, observed: HostState? = nil,
        dryRun: Bool, adopt: Bool
    ) throws -> ApplyResult {
        let store = StateStore(directory: profile.stateDir)
        if dryRun {
            // A dry run changes nothing and takes no lock.
            let plan = planApply(profile, host: try observed ?? host.observe(), state: try store.load(), adopt: adopt)
            var r = ApplyResult(profile: path, dryRun: true, plan: plan)
            if r.result != .conflict && !plan.actions.isEmpty {
                r.result = .planned
                r.actions = plan.actions.map { ActionReport($0, .planned) }
            }
            return r
        }
        let lock = try store.lock()
        defer { withExtendedLifetime(lock) {} }
        let state = try store.load()
        // If another run held the lock, it changed the host meanwhile: read it again.
        let now = try (lock.waited ? nil : observed) ?? host.observe()
        let plan = planApply(profile, host: now, state: state, adopt: adopt)
        var r = ApplyResult(profile: path, dryRun: false, plan: plan)
        var remembered = state
        if r.result != .conflict {
            if let warning = NamespaceClaims.claim(stateDir: profile.stateDir, profile: path) {
                r.warnings.append(warning)
            }
            // An explicit apply ends a hold set by `rsagent down` (the daemon resumes re-asserting).
            unlink(DaemonSignals.heldPath(profile.stateDir))
            if !plan.actions.isEmpty {
                let executor = Executor(host: host, store: store, state: state)
                r.record(executor.apply(plan.actions), of: plan.actions)
                remembered = executor.state
            }
        }
        // Nothing to remember (only addresses, whose mark is in the kernel, or a rolled-back
        // first apply): no state file is left behind.
        if remembered.isEmpty && state.isEmpty { store.clear() }
        return r
    }

    /// The plan, with one more conflict when another rsagent owns this namespace (its VIPs
    /// would look stale here).
    static func planApply(_ profile: Profile, host: HostState, state: AgentState, adopt: Bool) -> Plan {
        var plan = Planner.plan(profile, host: host, state: state, options: .init(adopt: adopt))
        if let owner = NamespaceClaims.check(stateDir: profile.stateDir, markedAddresses: !host.ownedAddresses.isEmpty)
        {
            plan.conflicts.insert(Conflict(id: "namespace.owner", message: owner.refusal), at: 0)
        }
        return plan
    }
}

extension ApplyResult {
    /// Before anything is carried out: a conflict (every action not run), or unchanged.
    init(profile: String, dryRun: Bool, plan: Plan) {
        let conflict = !plan.conflicts.isEmpty
        self.init(
            profile: profile, dryRun: dryRun, result: conflict ? .conflict : .unchanged, interfaces: plan.interfaces,
            actions: conflict ? plan.actions.map { ActionReport($0, .notRun) } : [], conflicts: plan.conflicts,
            errors: [], warnings: plan.warnings)
    }

    /// What the executor did with the plan's actions.
    mutating func record(_ report: ExecutionReport, of actions: [Action]) {
        self.actions = ActionReport.of(actions, report)
        done = report.outcome == .converged ? report.done : []
        errors =
            report.failures.map { Explain.sentence($0.action, $0.error) }
            + report.rollbackFailures.map { "rolling back: " + Explain.sentence($0.action, $0.error) }
        result =
            switch report.outcome {
            case .converged: .converged
            case .rolledBack: .rolledBack
            case .partial: .partial
            }
    }
}
