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

/// `rsagent apply --json` (schema `rsagent.apply/1`, see docs/json.md).
public struct ApplyResult: Codable, Sendable, CommandReport {
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

    /// 0 converged, 1 runtime failure, 2 invalid profile or conflict (nothing touched).
    public var exitCode: Int32 {
        switch result {
        case .unchanged, .planned, .converged: 0
        case .conflict: 2
        case .rolledBack, .partial: 1
        }
    }
}

/// `rsagent down --json` (schema `rsagent.down/1`).
public struct DownResult: Codable, Sendable, CommandReport {
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

extension ActionReport {
    /// The reports of a run's planned actions, by what became of each.
    static func of(_ actions: [Action], _ report: ExecutionReport) -> [ActionReport] {
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

// For people: stdout (`renderText`) and the stderr lines (`messages`) of apply and down, as
// status and check render theirs beside their reports.

extension ApplyResult {
    /// One line per action, marked `+ - ~`, `!` failed, `<` undone; then the verdict.
    public func renderText() -> String {
        var out = ""
        for a in actions {
            let mark =
                switch a.status {
                case .done: Style.green(a.sign)
                case .failed: Style.red("!")
                case .rolledBack: Style.yellow("<")
                case .planned, .notRun: a.sign
                }
            let note =
                switch a.status {
                case .rolledBack: "  (rolled back)"
                case .notRun: "  (not run)"
                case .planned, .done, .failed: ""
                }
            out += "\(mark) \(a.summary)\(note)\n"
        }
        switch result {
        case .unchanged: out += "unchanged: the host already matches \(profile)\n"
        case .planned: out += "dry run: \(actions.count) action(s) planned, nothing changed\n"
        case .converged: out += Style.green("converged") + ": \(actions.count) action(s) done\n"
        case .conflict: out += Style.red("conflict") + ": nothing was changed\n"
        case .rolledBack:
            out += Style.red("failed") + ": every change of this run was undone; the host is as it was\n"
        case .partial:
            out += Style.red("failed") + ": some changes could not be undone; see the lines marked ! and < above\n"
        }
        return out
    }

    /// Conflicts, errors and warnings, one sentence each, for stderr.
    public var messages: [String] {
        conflicts.map { "rsagent: \($0.message)" } + errors.map { "rsagent: \($0)" }
            + warnings.map { "rsagent: warning: \($0)" }
    }
}

extension DownResult {
    public func renderText() -> String {
        let out = actions.map { "\($0.status == .failed ? Style.red("!") : $0.sign) \($0.summary)\n" }.joined()
        let verdict =
            switch result {
            case .unchanged: "unchanged: rsagent owns nothing here\n"
            case .removed: Style.green("down") + ": \(actions.count) action(s) done\n"
            case .conflict: Style.red("refused") + ": nothing was changed\n"
            case .partial: Style.red("partial") + ": some of rsagent's changes are still in place (see below)\n"
            }
        return out + verdict
    }

    /// Errors and warnings, one sentence each, for stderr.
    public var messages: [String] { errors.map { "rsagent: \($0)" } + warnings.map { "rsagent: warning: \($0)" } }
}
