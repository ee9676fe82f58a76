extension Operations {
    /// `rsagent down`: under the state lock, removes everything rsagent owns here and restores
    /// what it changed. Needs no profile, only the state directory.
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
            actions: ActionReport.of(plan.actions, report),
            errors: report.failures.map { Explain.sentence($0.action, $0.error) },
            warnings: report.warnings)
    }
}
