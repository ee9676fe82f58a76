#if canImport(Glibc)
    import Glibc
#endif

/// `--netns NAME`: move this process into `/run/netns/NAME`, as `ip -n NAME` does.
///
/// `setns` moves only the calling thread. When this is the only thread (the CLI commands call
/// this first thing) that is the whole process. Otherwise the process re-executes itself from
/// the moved thread, so that every thread of the new image starts inside the namespace.
public enum NetworkNamespace {
    static let enteredVariable = "RSAGENT_NETNS_ENTERED"

    public static func enter(_ name: String) throws {
        if getenv(enteredVariable).map({ String(cString: $0) }) == name { return }
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw SystemError(
                operation: "entering network namespace \(name)", errno: EINVAL,
                reason: "a namespace name cannot contain '/'; give the name `ip netns list` shows")
        }
        let path = "/run/netns/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw SystemError(
                operation: "entering network namespace \(name)", errno: e,
                reason:
                    "\(path): \(systemMessage(e)); create it with `ip netns add \(name)` or check `ip netns list`"
            )
        }
        defer { close(fd) }
        guard ThreadNamespace.enter(fd, ThreadNamespace.network) else {
            let e = errno
            throw SystemError(
                operation: "entering network namespace \(name)", errno: e,
                reason: "setns: \(systemMessage(e)); run as root")
        }
        if threadCount() > 1 { try reexec(marking: name) }
    }

    static func threadCount() -> Int {
        guard let s = readTextFile("/proc/self/status") else { return 1 }
        for line in s.split(separator: "\n") where line.hasPrefix("Threads:") {
            return Int(line.dropFirst(8).trimmed) ?? 1
        }
        return 1
    }

    static func reexec(marking name: String) throws -> Never {
        setenv(enteredVariable, name, 1)
        let args = CommandLine.arguments
        var cargs = args.map { strdup($0) } + [nil]
        // The resolved path, not /proc/self/exe: the process name (ps, journald) stays rsagent.
        let exe = symlinkTarget("/proc/self/exe") ?? "/proc/self/exe"
        execv(exe, &cargs)
        throw SystemError.current("re-executing inside network namespace \(name)")
    }
}
