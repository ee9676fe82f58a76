import ArgumentParser
import Netlink
import RSAgent

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Explain why this realserver would not answer: VIP placement, ARP, rp_filter, routes.",
        discussion: """
            Every finding has an id, a verdict (pass, warn, fail), the evidence read from the \
            kernel and a fix to paste. Exit 0 when nothing fails, 1 otherwise.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var profileOption: ProfileOption
    @Option(name: .customLong("client"), help: ArgumentHelp("A client address to test (repeatable).", valueName: "IP"))
    var clients: [String] = []
    @Flag(help: "Print one JSON document (schema rsagent.check/1).") var json = false

    func validate() throws {
        for c in clients where IPAddress(c) == nil {
            throw ValidationError("--client \(c) is not an IPv4 or IPv6 address")
        }
    }

    func run() throws {
        try global.enterNamespace()
        let profile = try profileOption.load()
        let host = try openHost()
        let r = try reportingErrors("checking \(profileOption.profile)") {
            try Operations.check(
                profile: profile, path: profileOption.profile, host: host, clients: clients.compactMap(IPAddress.init))
        }
        let code = r.emitted(json: json)
        if code != 0 { throw ExitCode(code) }
    }
}
