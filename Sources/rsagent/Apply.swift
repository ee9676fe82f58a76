import ArgumentParser
import RSAgent

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Converge this host to the profile: VIP device, VIPs, ARP and rp_filter sysctls.",
        discussion: """
            Validates the whole profile and plans every change before making the first. A failure \
            midway undoes this run's changes. Exit 0 converged, 1 runtime failure, 2 invalid \
            profile or conflict with the host (nothing touched).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var profileOption: ProfileOption
    @Flag(help: "Print the plan and change nothing.") var dryRun = false
    @Flag(help: "Take over VIPs and devices that exist without rsagent's owner mark.") var adopt = false
    @Flag(help: "Print one JSON document (schema rsagent.apply/1).") var json = false

    func run() throws {
        try global.enterNamespace()
        // Decode the profile on a second thread while this one reads the host (read-only).
        let decoding = profileOption.decodeInBackground()
        let host = try openHost()
        let observed = try reportingErrors("reading the host's links and addresses") { try host.observe() }
        let profile = try profileOption.load(decoding)
        let r = try reportingErrors("applying \(profileOption.profile)") {
            try Operations.apply(
                profile: profile, path: profileOption.profile, host: host, observed: observed,
                dryRun: dryRun, adopt: adopt)
        }
        if json { emit(renderJSON(r)) } else { render(r) }
        if r.exitCode != 0 { throw ExitCode(r.exitCode) }
    }

    func render(_ r: ApplyResult) {
        var out = ""
        for a in r.actions {
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
        switch r.result {
        case .unchanged: out += "unchanged: the host already matches \(r.profile)\n"
        case .planned: out += "dry run: \(r.actions.count) action(s) planned, nothing changed\n"
        case .converged: out += Style.green("converged") + ": \(r.actions.count) action(s) done\n"
        case .conflict: out += Style.red("conflict") + ": nothing was changed\n"
        case .rolledBack:
            out += Style.red("failed") + ": every change of this run was undone; the host is as it was\n"
        case .partial:
            out += Style.red("failed") + ": some changes could not be undone; see the lines marked ! and < above\n"
        }
        emit(out)
        for c in r.conflicts { emitError("rsagent: \(c.message)") }
        for e in r.errors { emitError("rsagent: \(e)") }
        for w in r.warnings { emitError("rsagent: warning: \(w)") }
    }
}
