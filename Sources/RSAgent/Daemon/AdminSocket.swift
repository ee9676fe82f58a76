import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's local control socket: root only (mode 0600 and the peer's uid checked with
/// `SO_PEERCRED`), one short line per connection.
///
///     → ready | drain | maint     ← ok STATE        (persisted in state_dir/admin-state)
///     → state                     ← STATE
///     → services                  ← ok services 192.0.2.100:80 [2001:db8::1]:443 …
///                                   (the VIPs' TCP services: what `drain --wait` watches)
///     → directors                 ← ok directors 10.0.0.2 …
///                                   (directors yet to read the last drain or maint)
///
/// Served on a thread of its own; inputs are bounded (64 bytes, 1 s).
public final class AdminServer: @unchecked Sendable {
    public let path: String
    private let stateDir: String
    private let logger: Logger
    private let onChange: @Sendable (AdminState) -> Void
    private let services: @Sendable () -> [Endpoint]
    private let pendingDirectors: @Sendable () -> [String]
    private let mutex = Lock()
    private var stopped = false
    private var fd: Int32 = -1

    public init(
        path: String, stateDir: String, logger: Logger, services: @escaping @Sendable () -> [Endpoint] = { [] },
        pendingDirectors: @escaping @Sendable () -> [String] = { [] },
        onChange: @escaping @Sendable (AdminState) -> Void
    ) {
        self.path = path
        self.stateDir = stateDir
        self.logger = logger
        self.services = services
        self.pendingDirectors = pendingDirectors
        self.onChange = onChange
    }

    /// The default socket: `state_dir/admin.sock`.
    public static func defaultPath(stateDir: String) -> String { stateDir + "/admin.sock" }

    public func start() throws {
        let op = "listening on \(path)"
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.current(op) }
        guard var sa = unixAddress(path) else {
            throw SystemError(
                operation: op, errno: ENAMETOOLONG, reason: "the path is longer than a unix socket allows")
        }
        unlink(path)  // a stale socket from a daemon that was killed
        let old = umask(0o177)  // created 0600: never a moment when others could connect
        let bound = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(old)
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 8) == 0 else {
            let e = errno
            close(fd)
            throw SystemError(operation: op, code: e)
        }
        startThread(name: "rsagent-admin") { self.serve() }
    }

    public func stop() {
        mutex.withLock { stopped = true }
    }

    private func serve() {
        defer {
            close(fd)
            unlink(path)
        }
        while !mutex.withLock({ stopped }) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 250) > 0 else { continue }
            let conn = accept(fd, nil, nil)
            if conn < 0 { continue }
            _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
            handle(conn)
            close(conn)
        }
    }

    private func handle(_ conn: Int32) {
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var cred = PeerCredentials()
        var len = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, cred.uid == 0 else {
            reply(conn, "error: only root may change the admin state")
            logger.warning("admin socket: refused a request from uid \(cred.uid)")
            return
        }
        var buf = [UInt8](repeating: 0, count: 64)
        let n = recv(conn, &buf, buf.count, 0)
        guard n > 0 else { return }
        let state: AdminState
        switch Self.command(buf[0..<n]) {
        case .query:
            reply(conn, DaemonSignals.adminState(stateDir).rawValue)
            return
        case .services:
            reply(conn, (["ok services"] + services().map(\.description)).joined(separator: " "))
            return
        case .directors:
            reply(conn, (["ok directors"] + pendingDirectors()).joined(separator: " "))
            return
        case .set(let s): state = s
        case nil:
            reply(conn, "error: unknown command; send ready, drain, maint, state, services or directors")
            return
        }
        do {
            try Self.persist(state, stateDir: stateDir)
        } catch {
            reply(conn, "error: \(error)")
            return
        }
        logger.notice("admin state: \(state.rawValue) (set by pid \(cred.pid))")
        reply(conn, "ok \(state.rawValue)")
        onChange(state)
    }

    /// One request on the admin socket.
    public enum Command: Equatable, Sendable {
        case set(AdminState)
        case query
        case services
        case directors
    }

    /// Reads a request (at most 64 bytes): `ready`, `drain`, `maint`, `state`, `services` or `directors`, surrounding
    /// whitespace allowed; anything else is nil. Pure, for tests and fuzzing.
    public static func command(_ bytes: some Collection<UInt8>) -> Command? {
        guard bytes.count <= 64 else { return nil }
        let line = String(decoding: bytes, as: UTF8.self).trimmed
        if line == "state" { return .query }
        if line == "services" { return .services }
        if line == "directors" { return .directors }
        return AdminState(rawValue: line).map { .set($0) }
    }

    /// Writes `state_dir/admin-state` atomically, so it survives restarts and reboots.
    static func persist(_ state: AdminState, stateDir: String) throws {
        try writeAtomically(Array((state.rawValue + "\n").utf8), to: DaemonSignals.adminPath(stateDir))
    }

    private func reply(_ conn: Int32, _ text: String) {
        let bytes = Array((text + "\n").utf8)
        _ = send(conn, bytes, bytes.count, Int32(MSG_NOSIGNAL))
    }
}

/// The client side, for `rsagent drain|maint|ready`.
public enum AdminClient {
    /// Sends one command and returns the daemon's answer line.
    public static func send(_ command: String, socketPath: String) throws -> String {
        let op = "asking the rsagent daemon on \(socketPath)"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.current(op) }
        defer { close(fd) }
        guard var sa = unixAddress(socketPath) else {
            throw SystemError(
                operation: op, errno: ENAMETOOLONG, reason: "the path is longer than a unix socket allows")
        }
        let rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let e = errno
            let why =
                e == ENOENT || e == ECONNREFUSED
                ? "no daemon is listening (is `rsagent run` running? try `systemctl status rsagent`, or pass --socket)"
                : e == EACCES ? "permission denied; run as root" : systemMessage(e)
            throw SystemError(operation: op, errno: e, reason: why)
        }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array((command + "\n").utf8)
        _ = Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL))
        var buf = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buf, buf.count, 0)
        guard n > 0 else {
            throw SystemError(operation: op, errno: EIO, reason: "the daemon closed the connection without an answer")
        }
        return String(decoding: buf[0..<n], as: UTF8.self).trimmed
    }
}

/// `struct ucred` (pid, uid, gid), which glibc declares only under _GNU_SOURCE.
struct PeerCredentials {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

func unixAddress(_ path: String) -> sockaddr_un? {
    var sa = sockaddr_un()
    sa.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: sa.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &sa.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
    return sa
}
