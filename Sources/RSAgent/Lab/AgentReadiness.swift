#if canImport(Glibc)
    import Glibc
#endif

/// Where a lab agent says it is ready: a datagram socket given to it as `$NOTIFY_SOCKET`, the
/// way systemd learns it (`Type=notify`). `rsagent run` sends `READY=1` once the host matches
/// the profile and its listeners are bound — so the lab waits for exactly that, not for a line
/// in a log.
public final class AgentReadiness {
    public let path: String
    private let fd: Int32

    /// Binds a fresh socket at `path` (any file there is replaced).
    public init(path: String) throws {
        self.path = path
        let what = "listening for the lab agent's readiness on \(path)"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.current(what) }
        unlink(path)
        guard var sa = unixAddress(path) else {
            close(fd)
            throw SystemError(
                operation: what, errno: ENAMETOOLONG, reason: "the path is longer than a unix socket allows")
        }
        let bound = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let error = SystemError.current(what)
            close(fd)
            throw error
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Waits until a message carries `READY=1`; false when `timeout` seconds pass or `stop`
    /// says so first. Other messages (`STATUS=…`) are read and passed over.
    public func waitForReady(timeout: Double, stop: () -> Bool) -> Bool {
        let deadline = monotonicSeconds() + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while monotonicSeconds() < deadline && !stop() {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            guard n > 0 else { continue }
            let message = String(decoding: buffer[0..<n], as: UTF8.self)
            if message.split(separator: "\n").contains("READY=1") { return true }
        }
        return false
    }
}
