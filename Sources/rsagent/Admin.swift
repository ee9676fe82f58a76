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
    /// `toStderr`: the answer goes to stderr (stdout carries JSON lines).
    /// `path`: the socket, when the caller has found it already.
    func set(_ state: AdminState, meaning: String, toStderr: Bool = false, path: String? = nil) throws {
        let path = try path ?? socketPath()
        let answer: String
        do {
            answer = try AdminClient.send(state.rawValue, socketPath: path)
        } catch {
            throw fail("setting the admin state to \(state.rawValue): \(error)", code: 1)
        }
        guard answer == "ok \(state.rawValue)" else {
            throw fail("setting the admin state to \(state.rawValue): the daemon answered: \(answer)", code: 1)
        }
        let sentence = "admin state: \(state.rawValue) — \(meaning)"
        if toStderr { emitError(sentence) } else { emit(sentence) }
    }

    /// The VIP services the daemon serves (its current profile's), for `--wait`.
    func services(path: String) throws -> [Endpoint] {
        let answer: String
        do { answer = try AdminClient.send("services", socketPath: path) } catch {
            throw fail("asking the daemon for its VIP services: \(error)", code: 1)
        }
        let words = answer.split(separator: " ").map(String.init)
        guard words.starts(with: ["ok", "services"]) else {
            throw fail(
                "asking the daemon for its VIP services: it answered \(answer); is it older than this rsagent?",
                code: 1)
        }
        return words.dropFirst(2).compactMap { Endpoint($0) }
    }

    /// The directors the daemon knows that have yet to read the state just set; none when the
    /// daemon cannot say (it is older than the `directors` query, or did not answer).
    func pendingDirectors(path: String) -> [String] {
        guard let answer = try? AdminClient.send("directors", socketPath: path) else { return [] }
        let words = answer.split(separator: " ").map(String.init)
        return words.starts(with: ["ok", "directors"]) ? Array(words.dropFirst(2)) : []
    }
}

/// `--wait [--timeout D] [--until N] [--json]` of `drain` and `maint`.
struct WaitOptions: ParsableArguments {
    @Flag(help: "Then wait until the VIP services' established connections are at most --until.")
    var wait = false
    @Option(
        help: ArgumentHelp("With --wait: give up after this long (30, 30s, 5m, 1h; default: no limit).", valueName: "D")
    )
    var timeout: String?
    @Option(help: ArgumentHelp("With --wait: done when at most N connections are left.", valueName: "N"))
    var until = 0
    @Flag(help: "With --wait: one JSON object per line while waiting, and a final one.")
    var json = false

    func validate() throws {
        if !wait && (timeout != nil || until != 0 || json) {
            throw ValidationError("--timeout, --until and --json go with --wait")
        }
        if let timeout, parseDuration(timeout) == nil {
            throw ValidationError("--timeout \(timeout) is not a duration; give seconds (30, 30s) or 500ms, 5m, 1h")
        }
        if until < 0 { throw ValidationError("--until must be 0 or more") }
    }
}

/// Set by SIGINT while `--wait` waits: the state stays, the wait ends.
nonisolated(unsafe) private var interrupted: sig_atomic_t = 0

extension WaitOptions {
    /// Waits until the established connections to `services` are at most `until` and the
    /// directors (`directors`, the daemon's answer) have read the state, printing progress;
    /// exits 0 when drained, 1 on timeout or Ctrl-C (the state stays `state`).
    func waitForConnections(
        to services: [Endpoint], state: AdminState, directors: @escaping () -> [String]
    ) throws {
        let watch: DrainWatch
        do { watch = try DrainWatch(services: services, until: until, directors: directors) } catch {
            throw fail("counting connections to the VIP services: \(error)", code: 1)
        }
        signal(SIGINT) { _ in interrupted = 1 }
        let live = !json && isatty(1) == 1
        let limit = timeout.flatMap(parseDuration)
        while true {
            let step: (changed: Bool, pause: Double)
            do { step = try watch.poll() } catch {
                throw fail("counting connections to the VIP services: \(error)", code: 1)
            }
            let elapsed = watch.elapsed
            let wait = watch.wait
            if json {
                if step.changed { emit(wait.json(time: wallSeconds())) }
            } else if live {
                writeLive(wait.line(state: state, elapsed: elapsed))
            } else if step.changed {
                emit(wait.line(state: state, elapsed: elapsed))
            }
            let reason: String? =
                wait.drained
                ? nil
                : interrupted != 0 ? "interrupted" : limit.map { elapsed >= $0 } == true ? "timed out" : ""
            if reason != "" {
                if live { emit("") }
                try finish(watch, state: state, elapsed: elapsed, reason: reason)
                return
            }
            usleep(UInt32(min(step.pause, limit.map { max(0.01, $0 - elapsed) } ?? step.pause) * 1e6))
        }
    }

    private func finish(_ watch: DrainWatch, state: AdminState, elapsed: Double, reason: String?) throws {
        let wait = watch.wait
        guard let reason else {
            if json { emit(wait.json(time: wallSeconds(), final: elapsed)) }
            let left = wait.until == 0 ? "no connections left" : "\(wait.left) connections left"
            (json ? emitError : emit)("\(state.rawValue): \(left) to the VIP services after \(Int(elapsed))s")
            return
        }
        let clients = watch.busiestClients()
        if json { emit(wait.json(time: wallSeconds(), final: elapsed, clients: clients)) }
        emitError("rsagent: " + wait.unfinished(state: state, after: elapsed, because: reason, clients: clients))
        throw ExitCode(1)
    }

    /// Rewrites the terminal's current line.
    private func writeLive(_ line: String) {
        var bytes = Array(("\r\u{1B}[K" + line).utf8)
        _ = write(1, &bytes, bytes.count)
    }
}

/// `drain`, `maint` and `ready` differ only in the state they set and what it means.
protocol AdminStateCommand: ParsableCommand {
    static var state: AdminState { get }
    static var meaning: String { get }
    var global: GlobalOptions { get }
    var admin: AdminOptions { get }
    /// `--wait` and its options; nil for `ready`.
    var waiting: WaitOptions? { get }
}

extension AdminStateCommand {
    var waiting: WaitOptions? { nil }

    func run() throws {
        try global.enterNamespace()
        guard let waiting, waiting.wait else {
            try admin.set(Self.state, meaning: Self.meaning)
            return
        }
        // The socket once: finding it may read the profile.
        let path = try admin.socketPath()
        let services = try admin.services(path: path)
        try admin.set(Self.state, meaning: Self.meaning, toStderr: waiting.json, path: path)
        try waiting.waitForConnections(to: services, state: Self.state) { admin.pendingDirectors(path: path) }
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
    @OptionGroup var wait: WaitOptions
    var waiting: WaitOptions? { wait }
}

struct Maint: AdminStateCommand {
    static let configuration = CommandConfiguration(
        commandName: "maint",
        abstract: "Maintenance: the daemon stops re-asserting and reports maint to directors.")
    static let state = AdminState.maint
    static let meaning = "rsagent leaves the network alone until `rsagent ready`"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var admin: AdminOptions
    @OptionGroup var wait: WaitOptions
    var waiting: WaitOptions? { wait }
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
