import Logging
import NIOCore
import NIOPosix
import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP answer, decided without any I/O by the load report and the test service.
public struct HTTPAnswer: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var contentType: String
    public var body: String
    /// Extra headers (`Allow` on 405).
    public var headers: [(String, String)] = []

    public static func == (a: HTTPAnswer, b: HTTPAnswer) -> Bool {
        a.status == b.status && a.contentType == b.contentType && a.body == b.body
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }
}

extension HTTPAnswer {
    /// A `text/plain` answer.
    static func plain(_ status: Int, _ reason: String, _ body: String, headers: [(String, String)] = []) -> HTTPAnswer {
        HTTPAnswer(
            status: status, reason: reason, contentType: "text/plain; charset=utf-8", body: body, headers: headers)
    }
    static func notFound(_ body: String) -> HTTPAnswer { plain(404, "Not Found", body) }
    /// 405 for anything but GET and HEAD: the daemon's endpoints are read-only.
    static func getOnly(_ body: String) -> HTTPAnswer {
        plain(405, "Method Not Allowed", body, headers: [("Allow", "GET, HEAD")])
    }
    static func isRead(_ method: String) -> Bool { method == "GET" || method == "HEAD" }
}

/// The request target without its query string.
func requestPath(_ uri: String) -> Substring {
    uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? uri[...]
}

/// Admission for the daemon's listeners, so that readers (directors) keep being answered
/// whatever other clients do:
///
/// - a peer outside the allowed networks is closed unanswered and counted;
/// - one source address holds at most `sourceShare` connections of a listener (an eighth of the
///   cap), so a single client can never take every slot;
/// - at the per-listener cap (or at its source's share), a listener whose peers speak first
///   (HTTP) closes the connection that has waited longest without sending a complete request —
///   an idle one, a slowloris trickling a header, a keep-alive between requests — to make room;
///   with none to close, the newcomer is refused.
public final class ConnectionGate: @unchecked Sendable {
    private struct Waiting {
        var listener: String
        var source: IPAddress?
        var channel: any Channel
        /// Order of the last complete request (or of the connect): smallest waited longest.
        var since: UInt64
    }
    private let lock = Lock()
    private var counters = ListenerCounters()
    private var open: [String: Int] = [:]
    private var bySource: [String: [IPAddress: Int]] = [:]
    private var waiting: [ObjectIdentifier: Waiting] = [:]
    private var clock: UInt64 = 0
    /// Most connections a listener holds at once.
    public let cap: Int
    /// Most connections one source address holds on one listener.
    public var sourceShare: Int { max(4, cap / 8) }

    public init(cap: Int) { self.cap = cap }

    public var listenerCounters: ListenerCounters { lock.withLock { counters } }

    /// Admits `channel` from `source` on `listener` unless `allowed` is false or no room can be
    /// made. Each admitted connection must be `release`d when it closes.
    public func admit(
        _ listener: String, allowed: Bool, channel: any Channel, source: IPAddress?, evictWaiting: Bool
    ) -> Bool {
        var victim: (any Channel)?
        let admitted = lock.withLock {
            guard allowed else {
                counters.refused[listener, default: 0] += 1
                return false
            }
            let fromSource = source.map { bySource[listener]?[$0] ?? 0 } ?? 0
            if fromSource >= sourceShare || open[listener, default: 0] >= cap {
                // At its source's share, the source makes room from its own connections.
                let scope = fromSource >= sourceShare ? source : nil
                guard evictWaiting, let v = longestWaiting(listener, source: scope) else {
                    counters.refused[listener, default: 0] += 1
                    return false
                }
                waiting[ObjectIdentifier(v)] = nil
                victim = v
                counters.evicted[listener, default: 0] += 1
            }
            open[listener, default: 0] += 1
            if let source { bySource[listener, default: [:]][source, default: 0] += 1 }
            counters.served[listener, default: 0] += 1
            if evictWaiting {
                clock += 1
                waiting[ObjectIdentifier(channel)] = Waiting(
                    listener: listener, source: source, channel: channel, since: clock)
            }
            return true
        }
        victim?.close(promise: nil)  // outside the lock: its release takes it again
        return admitted
    }

    private func longestWaiting(_ listener: String, source: IPAddress?) -> (any Channel)? {
        waiting.values.filter { $0.listener == listener && (source == nil || $0.source == source) }
            .min { $0.since < $1.since }?.channel
    }

    /// A complete request arrived: the connection has waited no time at all now.
    func requested(_ channel: any Channel) {
        lock.withLock {
            guard waiting[ObjectIdentifier(channel)] != nil else { return }
            clock += 1
            waiting[ObjectIdentifier(channel)]?.since = clock
        }
    }

    public func release(_ listener: String, _ channel: any Channel, source: IPAddress?) {
        lock.withLock {
            open[listener, default: 1] -= 1
            if let source, let n = bySource[listener]?[source] {
                bySource[listener]?[source] = n > 1 ? n - 1 : nil
            }
            waiting[ObjectIdentifier(channel)] = nil
        }
    }
}

/// Binds one TCP listener whose connections pass `gate` (with `allow`; empty allows all) and
/// then get `configure`d. A port that cannot be had is one sentence naming the profile key.
/// `conversational`: the peer sends requests (HTTP). Such connections get `TCP_NODELAY` and,
/// at the cap, the one waiting longest for a complete request makes room. A server that writes
/// once and closes gains nothing from either, and saves the system call and the bookkeeping.
func bindListener(
    group: any EventLoopGroup, endpoint e: Endpoint, key: String, listener: String, gate: ConnectionGate,
    allow: [CIDR], logger: Logger, conversational: Bool = true,
    configure: @escaping @Sendable (any Channel) throws -> Void
) async throws -> any Channel {
    var bootstrap = ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.maxMessagesPerRead, value: 16)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    if conversational { bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1) }
    bootstrap = bootstrap.childChannelInitializer { channel in
        let peer = peerAddress(channel)
        let allowed = allow.isEmpty || peer.map { a in allow.contains { $0.contains(a) } } == true
        guard gate.admit(listener, allowed: allowed, channel: channel, source: peer, evictWaiting: conversational)
        else {
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        channel.closeFuture.whenComplete { _ in gate.release(listener, channel, source: peer) }
        do {
            try configure(channel)
            return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }
    do {
        let ch = try await bootstrap.bind(host: e.host.description, port: e.port).get()
        logger.notice("\(key) listening on \(e)")
        return ch
    } catch let err as IOError {
        throw SystemError(
            operation: "listening on \(e) for \(key)", errno: err.errnoCode,
            reason: "\(systemMessage(err.errnoCode)); choose another \(key) or stop what holds the port")
    }
}

/// The peer's address as an `IPAddress`, IPv4-mapped IPv6 (`::ffff:192.0.2.1`, from a `[::]`
/// listener) turned back into IPv4 so IPv4 networks match it.
func peerAddress(_ channel: any Channel) -> IPAddress? {
    guard let text = channel.remoteAddress?.ipAddress else { return nil }
    if text.hasPrefix("::ffff:"), text.contains("."), let v4 = IPAddress(String(text.dropFirst(7))) { return v4 }
    return IPAddress(text)
}

/// Adds a 10 s idle timeout and `AnswerHTTP`, which tells `gate` of each complete request.
/// `repeatable`: the same request on the same connection always gets the same answer (the test
/// service), so its bytes are kept and reused.
func configureHTTP(
    _ channel: any Channel, gate: ConnectionGate, repeatable: Bool = false,
    answer: @escaping (HTTPRequestHead, any Channel) -> HTTPAnswer
) throws {
    try channel.pipeline.syncOperations.addHandlers([
        IdleStateHandler(readTimeout: .seconds(10)), CloseWhenIdle(),
        AnswerHTTP(repeatable: repeatable, gate: gate, answer: answer),
    ])
}

/// Closes a connection when `IdleStateHandler` says it went quiet.
final class CloseWhenIdle: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// HTTP/1.x for read-only endpoints: each complete request head in the input gets one
/// pre-formatted response (pipelined requests in order, flushed together); keep-alive
/// honoured. Input is bounded: a head over 16 KiB is answered 431, a malformed one 400, and a
/// request with a body is answered and the connection closed, so nothing a client sends is
/// buffered beyond one head. A head must be complete within `headerTimeout` of its first byte
/// (nginx's `client_header_timeout`): a client trickling a header is closed then.
final class AnswerHTTP: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    /// Seconds from a request's first byte to its complete head.
    static let headerTimeout: Int64 = 5
    private let answer: (HTTPRequestHead, any Channel) -> HTTPAnswer
    private let repeatable: Bool
    private let gate: ConnectionGate
    private var pending: ByteBuffer?
    private var headerDeadline: Scheduled<Void>?
    private var closing = false
    private var last: (head: HTTPRequestHead, bytes: ByteBuffer)?

    init(repeatable: Bool, gate: ConnectionGate, answer: @escaping (HTTPRequestHead, any Channel) -> HTTPAnswer) {
        self.repeatable = repeatable
        self.gate = gate
        self.answer = answer
    }

    /// The response bytes for `head`, reused for a repeated request when answers are repeatable.
    private func response(_ head: HTTPRequestHead, _ context: ChannelHandlerContext) -> ByteBuffer {
        var key = head
        key.length = 0
        if repeatable, let last, last.head == key { return last.bytes }
        let r = answer(head, context.channel)
        let bytes = context.channel.allocator.buffer(
            bytes: r.serialized(keepAlive: head.keepAlive, head: head.method == "HEAD"))
        if repeatable { last = (key, bytes) }
        return bytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var input = unwrapInboundIn(data)
        if var p = pending {
            p.writeBuffer(&input)
            input = p
            pending = nil
        }
        while !closing, input.readableBytes > 0 {
            let parse = input.withUnsafeReadableBytes { HTTPRequestHead.parse($0) }
            switch parse {
            case .incomplete:
                pending = input
                if headerDeadline == nil {
                    let channel = context.channel
                    headerDeadline = context.eventLoop.scheduleTask(in: .seconds(Self.headerTimeout)) {
                        channel.close(promise: nil)
                    }
                }
                return
            case .tooLarge:
                fail(context, 431, "Request Header Fields Too Large")
            case .malformed:
                fail(context, 400, "Bad Request")
            case .request(let head):
                headerDeadline?.cancel()
                headerDeadline = nil
                gate.requested(context.channel)
                input.moveReaderIndex(forwardBy: head.length)
                let bytes = response(head, context)
                if head.keepAlive {
                    context.write(wrapOutboundOut(bytes), promise: nil)
                } else {
                    closing = true
                    writeLastAndClose(context, wrapOutboundOut(bytes))
                }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    /// Answers an error and closes gently: a plain close with the client's unread bytes still
    /// queued makes the kernel send RST, and the client may lose the answer. So only the write
    /// side is shut; input is discarded until the client closes (NIO then closes the channel),
    /// for one second at most.
    private func fail(_ context: ChannelHandlerContext, _ status: Int, _ reason: String) {
        closing = true
        let r = HTTPAnswer.plain(status, reason, reason + "\n")
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(
            wrapOutboundOut(context.channel.allocator.buffer(bytes: r.serialized(keepAlive: false))), promise: written)
        let channel = context.channel
        written.futureResult.whenComplete { _ in
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        headerDeadline?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// Writes `data`, flushes, and closes the channel once it is written.
func writeLastAndClose(_ context: ChannelHandlerContext, _ data: NIOAny) {
    let done = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(data, promise: done)
    let channel = context.channel
    done.futureResult.whenComplete { _ in channel.close(promise: nil) }
}

/// A server that says one line on connect and closes (the HAProxy agent, the test service).
/// Anything the peer sends is ignored.
final class SayOneLine: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let line: (any Channel) -> String

    init(line: @escaping (any Channel) -> String) { self.line = line }

    func channelActive(context: ChannelHandlerContext) {
        let text = line(context.channel)
        writeLastAndClose(context, wrapOutboundOut(context.channel.allocator.buffer(string: text)))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
