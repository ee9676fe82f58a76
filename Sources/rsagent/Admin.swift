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

/// `drain`, `maint` and `ready` differ only in the state they set and what it means.
protocol AdminStateCommand: ParsableCommand {
    static var state: AdminState { get }
    static var meaning: String { get }
    var global: GlobalOptions { get }
    var admin: AdminOptions { get }
}

extension AdminStateCommand {
    func run() throws {
        try global.enterNamespace()
        try admin.set(Self.state, meaning: Self.meaning)
    }
}

struct Drain: AdminStateCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drain this realserver: the load report gives weight 0, existing connections finish.")
    static let state = AdminState.drain
    static let meaning = "directors reading the load report send no new connections"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
}

struct Maint: AdminStateCommand {
    static let configuration = CommandConfiguration(
        abstract: "Maintenance: the daemon stops re-asserting and reports maint to directors.")
    static let state = AdminState.maint
    static let meaning = "rsagent leaves the network alone until `rsagent ready`"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
}

struct Ready: AdminStateCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back in service: re-assert the profile and report the real weight.")
    static let state = AdminState.ready
    static let meaning = "in service"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
}
