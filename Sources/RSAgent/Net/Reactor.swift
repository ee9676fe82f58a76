import CSockets
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// One thread that serves a set of listeners with `epoll(7)`: accepts, reads, answers, and
/// closes connections whose time is up. Everything a connection does happens on this thread,
/// so connections need no locks; only the gate (read by `/metrics`) has one.
///
/// The daemon's listeners answer small requests from directors and test clients; one
/// non-blocking thread per service does that at nginx's rate (bench/testservice.sh), where
/// SwiftNIO's event loops cost a megabyte and a half of resident code and a thread more.
final class Reactor: @unchecked Sendable {
    private let name: String
    private let epoll: Int32
    private let wake: Int32
    private var listeners: [Int32: Listener] = [:]
    private var connections: [Int32: Connection] = [:]
    private let finished = ShutdownLatch()
    private var started = false
    /// One read's worth of input, shared by all connections (they run one at a time).
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// How often, at most, connections are checked for expired deadlines while any are open.
    static let sweepMilliseconds = 250

    init(name: String) throws {
        epoll = csockets_epoll_create()
        wake = csockets_eventfd()
        self.name = name
        guard epoll >= 0, wake >= 0 else {
            let code = errno
            throw SystemError(operation: "creating the \(name) event loop", errno: code, reason: systemMessage(code))
        }
        _ = csockets_epoll_add(epoll, wake, CSOCKETS_IN)
    }

    deinit {
        close(epoll)
        close(wake)
    }

    /// Serves `listener` from `start` on. Call before `start`.
    func add(_ listener: Listener) throws {
        precondition(!started, "Reactor.add after start")
        guard csockets_epoll_add(epoll, listener.fd, CSOCKETS_IN) == 0 else {
            let code = errno
            throw SystemError(operation: "watching a listener", errno: code, reason: systemMessage(code))
        }
        listeners[listener.fd] = listener
    }

    func start() {
        started = true
        startThread(name: name) { self.loop() }
    }

    /// Closes every connection and listener; returns when the thread has.
    func stop() async {
        guard started else {
            listeners = [:]
            return
        }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
        await finished.wait()
    }

    private func loop() {
        var fds = [Int32](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        var nextSweep = Connection.now() + UInt64(Self.sweepMilliseconds)
        while true {
            let timeout = connections.isEmpty ? -1 : Self.sweepMilliseconds
            let n = csockets_epoll_wait(epoll, &fds, &events, 64, Int32(timeout))
            if n < 0 && errno != EINTR { break }
            for i in 0..<max(0, Int(n)) {
                let fd = fds[i]
                if fd == wake {
                    closeAll()
                    finished.trip()
                    return
                }
                if let listener = listeners[fd] {
                    accept(listener)
                } else if let c = connections[fd] {
                    c.ready(events[i], buffer: &buffer)
                }
            }
            let now = Connection.now()
            if now >= nextSweep {
                for c in Array(connections.values) where c.expired(now) { c.close() }
                nextSweep = now + UInt64(Self.sweepMilliseconds)
            }
        }
        closeAll()
        finished.trip()
    }

    /// Takes up to 16 waiting connections (more wait for the next turn, so one busy listener
    /// cannot starve the others).
    private func accept(_ listener: Listener) {
        for _ in 0..<16 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = csockets_accept(listener.fd, &storage, &length)
            guard fd >= 0 else { return }
            let peer = SocketAddress(storage)
            let c = Connection(fd: fd, peer: peer, listener: listener, reactor: self)
            guard
                listener.gate.admit(
                    listener.name, allowed: listener.allows(peer?.ip), connection: c, source: peer?.ip,
                    evictWaiting: listener.conversational)
            else {
                close(fd)
                continue
            }
            connections[fd] = c
            c.open()
        }
    }

    // MARK: For connections

    func watch(_ c: Connection, events: UInt32, add: Bool) {
        _ = add ? csockets_epoll_add(epoll, c.fd, events) : csockets_epoll_modify(epoll, c.fd, events)
    }

    func forget(_ c: Connection) { connections[c.fd] = nil }

    private func closeAll() {
        for c in Array(connections.values) { c.close() }
        listeners = [:]
    }
}
