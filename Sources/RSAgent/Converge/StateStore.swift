#if canImport(Glibc)
    import Glibc
#endif

/// `state_dir/state.json`: what rsagent must remember that the kernel cannot hold for it.
/// Written atomically (temporary file, fsync, rename) so a `kill -9` leaves the old or the new
/// file, never a torn one.
public final class StateStore {
    public let directory: String
    public var path: String { directory + "/state.json" }

    public init(directory: String) { self.directory = directory }

    /// The saved state, or an empty one when there is none yet.
    public func load() throws -> AgentState {
        guard let data = readTextFile(path) else { return AgentState() }
        do {
            return try JSON.decode(AgentState.self, from: data)
        } catch {
            let what =
                switch error {
                case DecodingError.dataCorrupted: "it is not valid JSON"
                default: "it is JSON but not rsagent's state"
                }
            throw SystemError(
                operation: "reading \(path)", errno: EINVAL,
                reason:
                    "the file is corrupt (\(what)), so rsagent cannot tell which sysctls it changed; move it aside (mv \(path) \(path).corrupt) and run the command again, then compare the ARP and rp_filter values in `rsagent status` with what they were before rsagent"
            )
        }
    }

    public func save(_ state: AgentState) throws {
        try makeDirectory()
        try writeAtomically(Array(try JSON.encode(state, pretty: true).utf8), to: path)
    }

    /// `mkdir -p -m 0700`: the state directory and any missing parents, with the failing
    /// component's own errno (a read-only filesystem is EROFS, not "permission denied").
    func makeDirectory() throws {
        var current = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw StateFileError(path: current, errno: errno)
            }
        }
    }

    /// An exclusive `flock` on `state_dir/lock`, held until the value is released, so that two
    /// rsagent runs never interleave their changes. Waits up to `timeout` seconds for another run.
    public final class Lock {
        let fd: Int32
        /// True when another run held the lock first: what was read before may be stale.
        public let waited: Bool
        init(fd: Int32, waited: Bool) { self.fd = fd; self.waited = waited }
        deinit { flock(fd, LOCK_UN); close(fd) }
    }

    /// `onWait` is told once, when another run holds the lock, who it is and how long this
    /// one will wait (the CLI prints it on stderr, so a waiting `apply` never looks hung).
    public func lock(timeout: Double = 30, onWait: (String) -> Void = { emitError("rsagent: " + $0) }) throws -> Lock {
        let op = "locking \(directory)/lock"
        try makeDirectory()
        let path = directory + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError(path: path, errno: errno) }
        var waited = false
        let deadline = monotonicSeconds() + timeout
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, monotonicSeconds() < deadline else {
                close(fd)
                throw SystemError(
                    operation: op, errno: EWOULDBLOCK,
                    reason:
                        "\(Self.holder(path)) has been changing this host for more than \(Int(timeout)) s and still holds it; wait for it to finish, or look at it (it may be stuck)"
                )
            }
            if !waited {
                onWait(
                    "waiting up to \(Int(timeout)) s for \(Self.holder(path)), which is changing this host (it holds \(path))"
                )
            }
            waited = true
            usleep(20_000)
        }
        // Say who holds it, for the next one that has to wait.
        _ = ftruncate(fd, 0)
        let line = Array("\(getpid()) \(processSummary(getpid()) ?? "rsagent")\n".utf8)
        _ = pwrite(fd, line, line.count, 0)
        return Lock(fd: fd, waited: waited)
    }

    /// "pid 123 (`rsagent apply -c …`)" from the lock file, as its holder wrote it.
    static func holder(_ path: String) -> String {
        guard let text = readTextFile(path)?.trimmed, !text.isEmpty,
            let space = text.firstIndex(of: " ") ?? Optional(text.endIndex), let pid = Int32(text[..<space])
        else { return "another rsagent" }
        let command = text[space...].trimmed
        return "pid \(pid)" + (command.isEmpty ? "" : " (`\(command)`)")
    }

    /// Removes the file once there is nothing left to remember.
    /// The lock file stays: unlinking a file others may be waiting to `flock` would let a
    /// newcomer lock a fresh file while a waiter locks the old one.
    public func clear() {
        unlink(path)
    }
}

/// `state_dir` could not be written: rsagent records what it is about to change there first, so
/// the change it was about to make is not made.
public struct StateFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    public var reason: String { systemMessage(errno) }
    public var fix: String {
        switch errno {
        case ENOSPC, EDQUOT: "free space on the filesystem holding it, or set `state_dir` elsewhere"
        case EROFS: "that filesystem is read-only; set `state_dir` to a writable place (default /var/lib/rsagent)"
        default: "make it writable for root, or set `state_dir` elsewhere"
        }
    }
    public var description: String { "writing \(path): \(reason); \(fix)" }
}

/// Writes `data` to `path` through a temporary file, fsync and rename, so a `kill -9` or a full
/// disk leaves the old file or the new one, never a torn one.
func writeAtomically(_ data: [UInt8], to path: String) throws {
    let tmp = path + ".tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw StateFileError(path: path, errno: errno) }
    var failed: Int32 = 0
    let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    // A short write on a full filesystem sets no errno: call it what it is.
    if written != data.count { failed = written < 0 ? errno : ENOSPC } else if fsync(fd) != 0 { failed = errno }
    close(fd)
    if failed == 0 && rename(tmp, path) != 0 { failed = errno }
    if failed != 0 {
        unlink(tmp)
        throw StateFileError(path: path, errno: failed)
    }
}
