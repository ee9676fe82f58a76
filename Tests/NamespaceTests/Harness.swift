import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Root, `ip` and the built binary: what namespace tests need. Elsewhere they are skipped.
enum Env {
    static let isRoot = getuid() == 0
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()
    /// The binary under test: $RSAGENT_BIN, else the debug build next to the sources.
    static let binary =
        ProcessInfo.processInfo.environment["RSAGENT_BIN"]
        ?? packageRoot.appendingPathComponent(".build/debug/rsagent").path
    static let ipPath = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    /// The optimised build, for tests whose bounds are about speed (scripts/test builds it):
    /// $RSAGENT_RELEASE_BIN, else .build/release/rsagent.
    static let releaseBinary =
        ProcessInfo.processInfo.environment["RSAGENT_RELEASE_BIN"]
        ?? packageRoot.appendingPathComponent(".build/release/rsagent").path
    static let canRun = isRoot && ipPath != nil && FileManager.default.isExecutableFile(atPath: binary)
    static let skipReason: Comment =
        "needs root, iproute2 and a built rsagent (swift build); runs in fresh network namespaces"
}

struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:]
    }
}

/// Starts a program with stdout and stderr going to fresh temporary files; returns its pid.
/// `posix_spawn` + `waitpid` rather than Foundation's `Process`, whose child reaping was seen to
/// miss exits when many tests spawn at once.
/// `stdin`: the read end of a pipe to give it (its write end, `closing`, is closed in the child).
func spawn(
    _ path: String, _ args: [String], stdout: String = "/dev/null", stderr: String = "/dev/null",
    environment: [String: String] = [:], stdin: (read: Int32, closing: Int32)? = nil
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdin {
        posix_spawn_file_actions_adddup2(&actions, stdin.read, 0)
        posix_spawn_file_actions_addclose(&actions, stdin.closing)
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let argv = ([path] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var inherited = ProcessInfo.processInfo.environment
    // Under scripts/sanitize: the sanitizer options meant for the programs the tests start.
    if let childOptions = inherited["RSAGENT_CHILD_ASAN_OPTIONS"] { inherited["ASAN_OPTIONS"] = childOptions }
    let env =
        (inherited.merging(environment.merging(["NO_COLOR": "1"]) { a, _ in a }) { _, n in n })
        .map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { env.forEach { free($0) } }
    // The child starts with no blocked signals and default dispositions: the test runner's
    // own signal state must not make a helper deaf to SIGTERM.
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, &attr, argv, env)
    guard rc == 0 else { throw HarnessError("spawning \(path): \(String(cString: strerror(rc)))") }
    return pid
}

/// Waits for a child; returns its exit status, or 128 + signal.
func wait(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let sig = status & 0x7f
    return sig == 0 ? (status >> 8) & 0xff : 128 + sig
}

@discardableResult
func execute(_ path: String, _ args: [String]) throws -> Output {
    let base = NSTemporaryDirectory() + "rsagent-out-\(UUID().uuidString)"
    defer { unlink(base + ".1"); unlink(base + ".2") }
    let pid = try spawn(path, args, stdout: base + ".1", stderr: base + ".2")
    let status = wait(pid)
    func read(_ p: String) -> String { (try? String(contentsOfFile: p, encoding: .utf8)) ?? "" }
    return Output(status: status, stdout: read(base + ".1"), stderr: read(base + ".2"))
}

/// A fresh, named network namespace shaped like a realserver: `lo` up, `veth0` with the RIP
/// 10.99.0.2/24 and a default route via 10.99.0.1 (its peer `veth1` lives in the same
/// namespace). Deleted when the test ends. Nothing here touches the host's own namespace.
final class Namespace {
    let name: String
    let stateDir: String
    private static let counter = Counter()

    init(loUp: Bool = true) throws {
        name = "rsat-\(getpid())-\(Self.counter.next())"
        stateDir = NSTemporaryDirectory() + "rsagent-\(name)"
        try ip("netns", "add", name)
        if loUp { try sh("link set lo up") }
        try sh("link add veth0 type veth peer name veth1")
        try sh("addr add 10.99.0.2/24 dev veth0")
        try sh("link set veth0 up")
        try sh("link set veth1 up")
        try sh("route add default via 10.99.0.1 dev veth0")
    }

    deinit {
        _ = try? execute(Env.ipPath!, ["netns", "del", name])
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    /// `ip -n NAME ARGS`, failing the test on a non-zero exit.
    @discardableResult
    func sh(_ args: String) throws -> String {
        let r = try execute(Env.ipPath!, ["-n", name] + args.split(separator: " ").map(String.init))
        if r.status != 0 { throw HarnessError("ip -n \(name) \(args): \(r.stderr)") }
        return r.stdout
    }

    @discardableResult
    func ip(_ args: String...) throws -> String {
        let r = try execute(Env.ipPath!, args)
        if r.status != 0 { throw HarnessError("ip \(args.joined(separator: " ")): \(r.stderr)") }
        return r.stdout
    }

    /// Runs the binary under test inside this namespace.
    func rsagent(_ args: String...) throws -> Output {
        try rsagent(args)
    }
    func rsagent(_ args: [String]) throws -> Output {
        try execute(Env.binary, [args[0], "--netns", name] + args.dropFirst())
    }

    /// Writes a profile whose state_dir is this test's own.
    func profile(_ yaml: String) throws -> String {
        let path = stateDir + ".yaml"
        try (yaml + "\nstate_dir: \(stateDir)\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A shipped profile with state_dir pointed at this test's own directory.
    func shippedProfile(_ name: String) throws -> String {
        let text = try String(
            contentsOf: Env.packageRoot.appendingPathComponent("profiles/\(name).yaml"), encoding: .utf8)
        return try profile(text.replacingOccurrences(of: "state_dir: /var/lib/rsagent", with: ""))
    }

    /// Addresses as (device, address/prefix, label) lines, sorted.
    func addresses() throws -> [String] {
        let data = Data(try sh("-j addr show").utf8)
        let links = (try JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
        var out: [String] = []
        for l in links {
            let dev = l["ifname"] as? String ?? "?"
            for a in l["addr_info"] as? [[String: Any]] ?? [] {
                out.append("\(dev) \(a["local"] ?? "?")/\(a["prefixlen"] ?? "?") \(a["label"] ?? "")")
            }
        }
        return out.sorted()
    }

    func addresses(on dev: String) throws -> Set<String> {
        Set(try addresses().filter { $0.hasPrefix(dev + " ") }.map { String($0.split(separator: " ")[1]) })
    }

    /// Links with their up/down state and kind.
    func links() throws -> [String] {
        let data = Data(try sh("-j -d link show").utf8)
        let links = (try JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
        return links.map { l in
            let flags = (l["flags"] as? [String] ?? []).contains("UP") ? "up" : "down"
            let kind = (l["linkinfo"] as? [String: Any])?["info_kind"] as? String ?? "-"
            return "\(l["ifname"] ?? "?") \(kind) \(flags)"
        }.sorted()
    }

    /// Every arp_ignore / arp_announce / rp_filter of every interface, read inside the namespace.
    func sysctls() throws -> [String: Int] {
        let r = try execute(
            Env.ipPath!,
            [
                "netns", "exec", name, "sh", "-c",
                "for f in /proc/sys/net/ipv4/conf/*/arp_ignore /proc/sys/net/ipv4/conf/*/arp_announce /proc/sys/net/ipv4/conf/*/rp_filter; do echo \"$f $(cat $f)\"; done",
            ])
        var out: [String: Int] = [:]
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 {
                out[String(parts[0]).replacingOccurrences(of: "/proc/sys/net/ipv4/conf/", with: "")] = Int(parts[1])
            }
        }
        return out
    }

    func setSysctl(_ path: String, _ value: Int) throws {
        let r = try execute(
            Env.ipPath!, ["netns", "exec", name, "sh", "-c", "echo \(value) > /proc/sys/net/ipv4/conf/\(path)"])
        if r.status != 0 { throw HarnessError("setting \(path): \(r.stderr)") }
    }

    /// Everything `down` must restore: addresses, links, sysctls.
    struct Snapshot: Equatable {
        var addresses: [String]
        var links: [String]
        var sysctls: [String: Int]
        /// The same without one device (tunl0, which stays once ipip is loaded).
        func withoutLink(_ name: String) -> Snapshot {
            Snapshot(
                addresses: addresses.filter { !$0.hasPrefix(name + " ") },
                links: links.filter { !$0.hasPrefix(name + " ") },
                sysctls: sysctls.filter { !$0.key.hasPrefix(name + "/") })
        }
    }
    /// IPv6 link-local addresses are left out: the kernel adds them itself when a link gets its
    /// carrier, through linkwatch, which is rate-limited and so can land a second later on a busy
    /// machine — between two snapshots of a test that changed nothing.
    func snapshot() throws -> Snapshot {
        Snapshot(
            addresses: try addresses().filter { !$0.contains(" fe80:") }, links: try links(), sysctls: try sysctls())
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

final class Counter: @unchecked Sendable {
    private var n = 0
    private let lock = NSLock()
    func next() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
}
