import CSockets
import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// One accepted connection of a `Listener`, served on its reactor's thread: what it has read
/// and not yet answered, what it has to write, and when its time is up.
///
/// HTTP (`Listener.Conversation.http`), for read-only endpoints: each complete request head in
/// the input gets one answer (pipelined requests in order, written together); keep-alive
/// honoured. Input is bounded: a head over 16 KiB is answered 431, a malformed one 400, and a
/// request with a body is answered and the connection closed, so nothing a client sends is kept
/// beyond one head. A head must be complete within `headerSeconds` of its first byte (nginx's
/// `client_header_timeout`), and a connection that sends nothing for `idleSeconds` is closed.
/// While an answer waits for the client to read it, nothing more is read (backpressure).
final class Connection {
    static let headerSeconds: UInt64 = 5
    static let idleSeconds: UInt64 = 10
    /// How long an answered error waits for the client to close before the connection is.
    static let lingerSeconds: UInt64 = 1

    private enum Phase {
        case open
        /// The last answer is queued: close once it is written.
        case closeWhenWritten
        /// An error answer is queued: once written, shut the write side and discard input
        /// until the client closes (`lingering`). A plain close with the client's unread bytes
        /// still queued makes the kernel send RST, and the client may lose the answer.
        case shutWhenWritten
        case lingering
        case closed
    }

    let fd: Int32
    let peer: SocketAddress?
    private let listener: Listener
    private unowned let reactor: Reactor
    private var phase = Phase.open
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var written = 0
    /// Waiting for `EPOLLOUT`: the socket did not take all of `output`.
    private var awaitingOutput = false
    private var idleDeadline: UInt64
    private var headerDeadline: UInt64?
    private var lingerDeadline: UInt64?
    private var last: (head: HTTPRequestHead, bytes: [UInt8])?

    init(fd: Int32, peer: SocketAddress?, listener: Listener, reactor: Reactor) {
        self.fd = fd
        self.peer = peer
        self.listener = listener
        self.reactor = reactor
        idleDeadline = Self.now() + Self.idleSeconds * 1000
    }

    /// The address the client connected to (a VIP, for the test service).
    var local: SocketAddress? { SocketAddress(of: fd, peer: false) }

    /// Monotonic milliseconds.
    static func now() -> UInt64 { UInt64(monotonicSeconds() * 1000) }

    /// Just admitted: greet (one line) or wait for requests.
    func open() {
        switch listener.conversation {
        case .sayOneLine(let line):
            reactor.watch(self, events: 0, add: true)
            phase = .closeWhenWritten
            output = Array(line(self).utf8)
            flush()
        case .http:
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            reactor.watch(self, events: CSOCKETS_IN, add: true)
        }
    }

    /// epoll said `events`.
    func ready(_ events: UInt32, buffer: inout [UInt8]) {
        if events & CSOCKETS_OUT != 0 { flush() }
        guard phase != .closed, events & (CSOCKETS_IN | CSOCKETS_HUP) != 0, !awaitingOutput else { return }
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            close()
            return
        }
        guard n > 0, phase == .open else { return }
        idleDeadline = Self.now() + Self.idleSeconds * 1000
        if input.isEmpty {
            buffer.withUnsafeBytes { answer(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        } else {
            input.append(contentsOf: buffer[0..<n])
            let pending = input
            input = []
            pending.withUnsafeBytes { answer($0) }
        }
        flush()
    }

    /// Answers every complete request head in `bytes`; keeps an incomplete one.
    private func answer(_ bytes: UnsafeRawBufferPointer) {
        guard case .http(let repeatable, let respond) = listener.conversation else { return }
        var offset = 0
        while phase == .open, offset < bytes.count {
            switch HTTPRequestHead.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
            case .incomplete:
                input = Array(bytes[offset...])
                if headerDeadline == nil { headerDeadline = Self.now() + Self.headerSeconds * 1000 }
                return
            case .tooLarge:
                fail(431, "Request Header Fields Too Large")
            case .malformed:
                fail(400, "Bad Request")
            case .request(let head):
                headerDeadline = nil
                listener.gate.requested(self)
                offset += head.length
                output += response(head, repeatable: repeatable, respond)
                if !head.keepAlive { phase = .closeWhenWritten }
            }
        }
    }

    /// The answer's bytes for `head`, reused for a repeated request when answers are repeatable.
    private func response(
        _ head: HTTPRequestHead, repeatable: Bool, _ respond: (HTTPRequestHead, Connection) -> HTTPAnswer
    ) -> [UInt8] {
        var key = head
        key.length = 0
        if repeatable, let last, last.head == key { return last.bytes }
        let bytes = respond(head, self).serialized(keepAlive: head.keepAlive, head: head.method == "HEAD")
        if repeatable { last = (key, bytes) }
        return bytes
    }

    private func fail(_ status: Int, _ reason: String) {
        output += HTTPAnswer.plain(status, reason, reason + "\n").serialized(keepAlive: false)
        phase = .shutWhenWritten
    }

    /// Writes what is queued; what the socket does not take waits for `EPOLLOUT`, and input is
    /// not read meanwhile.
    private func flush() {
        while written < output.count {
            let n = output.withUnsafeBytes {
                send(fd, $0.baseAddress! + written, $0.count - written, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                written += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && errno == EAGAIN {
                if !awaitingOutput { reactor.watch(self, events: CSOCKETS_OUT, add: false) }
                awaitingOutput = true
                return
            } else {
                close()
                return
            }
        }
        output.removeAll(keepingCapacity: output.count <= 4096)
        written = 0
        switch phase {
        case .closeWhenWritten:
            close()
        case .shutWhenWritten:
            shutdown(fd, Int32(SHUT_WR))
            phase = .lingering
            lingerDeadline = Self.now() + Self.lingerSeconds * 1000
            reactor.watch(self, events: CSOCKETS_IN, add: false)
            awaitingOutput = false
        default:
            if awaitingOutput { reactor.watch(self, events: CSOCKETS_IN, add: false) }
            awaitingOutput = false
        }
    }

    /// Whether its time is up at `now`: a trickled head, a quiet client, an answered error.
    func expired(_ now: UInt64) -> Bool {
        if let d = lingerDeadline, now >= d { return true }
        if let d = headerDeadline, now >= d { return true }
        if case .http = listener.conversation, phase == .open, now >= idleDeadline { return true }
        return false
    }

    /// Closes it and gives its place at the gate back. Also called by the gate, on this thread,
    /// to make room for a newcomer.
    func close() {
        guard phase != .closed else { return }
        phase = .closed
        reactor.forget(self)
        Glibc.close(fd)
        listener.gate.release(listener.name, self, source: peer?.ip)
    }
}
