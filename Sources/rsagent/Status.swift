import ArgumentParser
import RSAgent

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show owned VIPs and devices, effective ARP / rp_filter values, and drift from the profile.",
        discussion: "Exit 0, or 3 when a profile is given and the host has drifted from it.")

    @OptionGroup var global: GlobalOptions
    @Option(
        name: [.customShort("c"), .customLong("config")],
        help: ArgumentHelp("The profile to compare against.", valueName: "PROFILE"))
    var profile: String?
    @Option(help: ArgumentHelp("State directory when no profile is given.", valueName: "DIR"))
    var stateDir: String = Profile.defaultStateDir
    @Flag(help: "Print one JSON document (schema rsagent.status/1).") var json = false

    func run() throws {
        try global.enterNamespace()
        // As in apply: decode the profile on a second thread while this one reads the host.
        let option = try profile.map { try ProfileOption.parse(["-c", $0]) }
        let decoding = Background { try option?.load() }
        let host = try openHost()
        let observed = try reportingErrors("reading the host's links and addresses") { try host.observe() }
        let p = try decoding.value()
        let r = try reportingErrors("reading status") {
            try Operations.status(
                profile: p, path: profile, stateDir: p?.stateDir ?? stateDir, host: host, observed: observed)
        }
        emit(json ? renderJSON(r) : r.renderText())
        if r.exitCode != 0 { throw ExitCode(r.exitCode) }
    }
}
