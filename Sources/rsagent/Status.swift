import ArgumentParser
import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show owned VIPs and devices, effective ARP / rp_filter values, and drift from the profile.",
        discussion: "Exit 0, or 3 when a profile is given and the host has drifted from it.")

    @OptionGroup var global: GlobalOptions
    @Option(
        name: [.customShort("c"), .customLong("config")],
        help: ArgumentHelp(
            "The profile to compare against (default: \(defaultProfilePath) when it exists and no --state-dir is given).",
            valueName: "PROFILE"))
    var profile: String?
    @Option(help: ArgumentHelp("State directory when no profile is read (default /var/lib/rsagent).", valueName: "DIR"))
    var stateDir: String?
    @Flag(help: "Print one JSON document (schema rsagent.status/1).") var json = false

    /// The profile to read: the one given, else the unit's when it exists (and no state
    /// directory was asked for instead).
    var profilePath: String? {
        profile ?? (stateDir == nil && access(defaultProfilePath, F_OK) == 0 ? defaultProfilePath : nil)
    }

    func run() throws {
        try global.enterNamespace()
        // As in apply: decode the profile on a second thread while this one reads the host.
        let path = profilePath
        var option = ProfileOption()
        option.profile = path ?? defaultProfilePath
        let decoding = path.map { _ in option.decodeInBackground() }
        let host = try openHost()
        let observed = try reportingErrors("reading the host's links and addresses") { try host.observe() }
        let p = try decoding.map { try option.load($0) }
        let r = try reportingErrors("reading status") {
            try Operations.status(
                profile: p, path: path, stateDir: p?.stateDir ?? stateDir ?? Profile.defaultStateDir, host: host,
                observed: observed)
        }
        let code = r.emitted(json: json)
        if code != 0 { throw ExitCode(code) }
    }
}
