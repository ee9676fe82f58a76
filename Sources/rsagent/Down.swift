import ArgumentParser
import RSAgent

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Remove what rsagent owns (marked VIPs, devices it created) and restore the sysctls it changed.",
        discussion: """
            Never touches an address without rsagent's mark or a device it did not create. A sysctl \
            that someone changed after rsagent is left as it is, with a warning.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var profileOption: ProfileOption
    @Flag(help: "Print one JSON document (schema rsagent.down/1).") var json = false

    func run() throws {
        try global.enterNamespace()
        let profile = try profileOption.load()
        let host = try openHost()
        let r = try reportingErrors("taking down \(profileOption.profile)") {
            try Operations.down(stateDir: profile.stateDir, host: host)
        }
        let code = r.emitted(json: json)
        if code != 0 { throw ExitCode(code) }
    }
}
