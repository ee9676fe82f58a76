#if canImport(Glibc)
    import Glibc
#endif

/// A program the lab starts: its own binary (agents, probe, weight) and, when present, the
/// director's tools (`ipvsadm`) and `arping`. Output goes to a file; the lab ends only these
/// processes, by pid.
public final class LabProcess {
    public let pid: pid_t
    public let output: String
    private var status: Int32?

    /// Starts `path args` in network namespace `netns` (nil: the lab's own), from the calling
    /// thread, which a spawned process inherits its namespaces from. With `hostname`, the
    /// process gets a UTS namespace of its own with that name (so each lab realserver says
    /// who it is). `environment` is added to this process's own.
    public init(
        _ path: String, _ args: [String], netns: String? = nil, hostname: String? = nil, output: String,
        environment: [String: String] = [:]
    ) throws {
        self.output = output
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var env = processEnvironment()
        env["NO_COLOR"] = "1"
        env["RSAGENT_NETNS_ENTERED"] = nil
        env.merge(environment) { _, new in new }
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var child: pid_t = 0
        let spawn = {
            let rc = posix_spawn(&child, path, &actions, nil, argv, envp)
            guard rc == 0 else {
                throw SystemError(operation: "starting \(path)", code: rc)
            }
        }
        let start = { if let hostname { try withHostname(hostname, spawn) } else { try spawn() } }
        if let netns { try NamedNamespace.within(netns) { try start() } } else { try start() }
        pid = child
    }

    public var text: String { readTextFile(output) ?? "" }

    /// Waits for the exit status (128 + signal when killed); nil if `timeout` passed first.
    public func wait(timeout: Double) -> Int32? {
        if let status { return status }
        let deadline = monotonicSeconds() + timeout
        var raw: Int32 = 0
        while monotonicSeconds() < deadline {
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid {
                let sig = raw & 0x7f
                status = sig == 0 ? (raw >> 8) & 0xff : 128 + sig
                return status
            }
            if r < 0 && errno != EINTR { return nil }
            usleep(20_000)
        }
        return nil
    }

    /// SIGTERM, then SIGKILL after two seconds.
    public func stop() {
        guard status == nil else { return }
        kill(pid, SIGTERM)
        if wait(timeout: 2) == nil {
            kill(pid, SIGKILL)
            _ = wait(timeout: 2)
        }
    }

    /// Runs a program to its end (at most `timeout` seconds) and returns its status and output.
    public static func run(
        _ path: String, _ args: [String], netns: String? = nil, output: String, timeout: Double = 30
    ) throws -> (status: Int32, text: String) {
        let p = try LabProcess(path, args, netns: netns, output: output)
        guard let s = p.wait(timeout: timeout) else {
            p.stop()
            return (124, p.text)
        }
        return (s, p.text)
    }
}

/// The first executable called `name` in the usual system directories.
public func systemTool(_ name: String) -> String? {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"].map { "\($0)/\(name)" }
        .first { access($0, X_OK) == 0 }
}

/// Runs `body` with the calling thread in a new UTS namespace named `name`, then returns it to
/// its own. Equivalent to: `unshare --uts sh -c 'hostname NAME; …'`.
func withHostname(_ name: String, _ body: () throws -> Void) throws {
    let back = ThreadNamespace.openCurrent(ThreadNamespace.hostname)
    defer { close(back) }
    guard ThreadNamespace.unshareNew(ThreadNamespace.hostname) else {
        throw SystemError.current("naming lab host \(name)")
    }
    defer { _ = ThreadNamespace.enter(back, ThreadNamespace.hostname) }
    sethostname(name, name.utf8.count)
    try body()
}
