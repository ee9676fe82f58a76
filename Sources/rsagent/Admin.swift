import ArgumentParser
import RSAgent

/// `--socket PATH` for the admin commands.
struct AdminOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The daemon's admin socket.", valueName: "PATH"))
    var socket: String = AdminServer.defaultPath(stateDir: Profile.defaultStateDir)

    /// Asks the daemon to change the admin state; prints its answer or one sentence and exits 1.
    func set(_ state: AdminState, meaning: String) throws {
        let answer: String
        do {
            answer = try AdminClient.send(state.rawValue, socketPath: socket)
        } catch {
            emitError("rsagent: setting the admin state to \(state.rawValue): \(error)")
            throw ExitCode(1)
        }
        guard answer == "ok \(state.rawValue)" else {
            emitError("rsagent: setting the admin state to \(state.rawValue): the daemon answered: \(answer)")
            throw ExitCode(1)
        }
        emit("admin state: \(state.rawValue) — \(meaning)")
    }
}

struct Drain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drain this realserver: the load report gives weight 0, existing connections finish.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
    func run() throws {
        try global.enterNamespace()
        try admin.set(.drain, meaning: "directors reading the load report send no new connections")
    }
}

struct Maint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Maintenance: the daemon stops re-asserting and reports maint to directors.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
    func run() throws {
        try global.enterNamespace()
        try admin.set(.maint, meaning: "rsagent leaves the network alone until `rsagent ready`")
    }
}

struct Ready: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back in service: re-assert the profile and report the real weight.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
    func run() throws {
        try global.enterNamespace()
        try admin.set(.ready, meaning: "in service")
    }
}
