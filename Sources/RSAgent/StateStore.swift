import Foundation

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
        guard let data = FileManager.default.contents(atPath: path) else { return AgentState() }
        do {
            return try JSONDecoder().decode(AgentState.self, from: data)
        } catch {
            throw SystemError(
                operation: "reading \(path)", errno: EINVAL,
                reason: "the file is not rsagent state (\(error)); move it aside if it is not needed")
        }
    }

    public func save(_ state: AgentState) throws {
        let op = "saving rsagent state to \(path)"
        try makeDirectory(op)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(state)
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            throw SystemError(operation: op, errno: e, reason: String(cString: strerror(e)))
        }
        let ok = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
        let e = errno
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw SystemError(operation: op, errno: e, reason: String(cString: strerror(e)))
        }
    }

    /// `mkdir -p -m 0700`: the state directory and any missing parents.
    func makeDirectory(_ op: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
            let e = Int32(underlying?.code ?? Int(EACCES))
            throw SystemError(
                operation: op, errno: e,
                reason:
                    "cannot create \(directory) (\(String(cString: strerror(e)))); make it writable for root or set `state_dir` elsewhere"
            )
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

    public func lock(timeout: Double = 30) throws -> Lock {
        let op = "locking \(directory)/lock"
        try makeDirectory(op)
        let fd = open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            throw SystemError(operation: op, errno: e, reason: String(cString: strerror(e)))
        }
        var waited = false
        let deadline = Date().addingTimeInterval(timeout)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, Date() < deadline else {
                close(fd)
                throw SystemError(
                    operation: op, errno: EWOULDBLOCK,
                    reason:
                        "another rsagent has been changing this host for \(Int(timeout)) s; wait for it to finish, or find it with `fuser \(directory)/lock`"
                )
            }
            waited = true
            usleep(20_000)
        }
        return Lock(fd: fd, waited: waited)
    }

    /// Removes the file once there is nothing left to remember.
    /// The lock file stays: unlinking a file others may be waiting to `flock` would let a
    /// newcomer lock a fresh file while a waiter locks the old one.
    public func clear() {
        unlink(path)
    }
}
