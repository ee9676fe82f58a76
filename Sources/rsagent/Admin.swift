import ArgumentParser
import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

/// Which daemon the admin commands talk to: `--socket PATH`, or the `admin.sock` in the
/// `state_dir` of `-c PROFILE` (default /etc/rsagent/rsagent.yaml, the unit's).
struct AdminOptions: ParsableArguments {
    @Option(
        name: [.customShort("c"), .customLong("config")],
        help: ArgumentHelp(
            "The daemon's profile; its state_dir holds the admin socket (default: \(defaultProfilePath)).",
            valueName: "PROFILE"))
    var profile: String?
    @Option(
        help: ArgumentHelp(
            "The daemon's admin socket (default: STATE_DIR/admin.sock of the profile, else /var/lib/rsagent/admin.sock).",
            valueName: "PATH"))
    var socket: String?

    func validate() throws {
        if profile != nil && socket != nil {
            throw ValidationError("give -c PROFILE or --socket PATH, not both")
        }
    }

    /// `--socket`, else the profile's state_dir; without a profile file at the default path,
    /// the default state_dir's socket.
    func socketPath() throws -> String {
        if let socket { return socket }
        if profile == nil && access(defaultProfilePath, F_OK) != 0 {
            return AdminServer.defaultPath(stateDir: Profile.defaultStateDir)
        }
        var option = ProfileOption()
        option.profile = profile ?? defaultProfilePath
        return AdminServer.defaultPath(stateDir: try option.load().stateDir)
    }

    /// Asks the daemon to change the admin state; prints its answer or one sentence and exits 1.
    func set(_ state: AdminState, meaning: String) throws {
        let path = try socketPath()
        let answer: String
        do {
            answer = try AdminClient.send(state.rawValue, socketPath: path)
        } catch {
            throw fail("setting the admin state to \(state.rawValue): \(error)", code: 1)
        }
        guard answer == "ok \(state.rawValue)" else {
            throw fail("setting the admin state to \(state.rawValue): the daemon answered: \(answer)", code: 1)
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
        commandName: "drain",
        abstract: "Drain this realserver: the load report gives weight 0, existing connections finish.")
    static let state = AdminState.drain
    static let meaning = "directors reading the load report send no new connections"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
}

struct Maint: AdminStateCommand {
    static let configuration = CommandConfiguration(
        commandName: "maint",
        abstract: "Maintenance: the daemon stops re-asserting and reports maint to directors.")
    static let state = AdminState.maint
    static let meaning = "rsagent leaves the network alone until `rsagent ready`"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
}

struct Ready: AdminStateCommand {
    static let configuration = CommandConfiguration(
        commandName: "ready",
        abstract: "Back in service: re-assert the profile and report the real weight.")
    static let state = AdminState.ready
    static let meaning = "in service"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
}
