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
        let code = r.emitted(json: json)
        if code != 0 { throw ExitCode(code) }
    }
}
