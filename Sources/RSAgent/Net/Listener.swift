import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Netlink

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

/// Admission for the daemon's listeners: a peer outside the allowed networks, or one over the
/// per-listener connection cap, is closed unanswered and counted.
public final class ConnectionGate: @unchecked Sendable {
    private let lock = NSLock()
    private var counters = ListenerCounters()
    private var open: [String: Int] = [:]
    /// Most connections a listener holds at once.
    public let cap: Int

    public init(cap: Int) { self.cap = cap }

    public var listenerCounters: ListenerCounters { lock.withLock { counters } }

    /// Open connections on `listener` now.
    public func openConnections(_ listener: String) -> Int { lock.withLock { open[listener, default: 0] } }

    /// Admits a connection on `listener` unless `allowed` is false or the cap is reached.
    /// Each admitted connection must be `release`d when it closes.
    public func admit(_ listener: String, allowed: Bool) -> Bool {
        lock.withLock {
            guard allowed, open[listener, default: 0] < cap else {
                counters.refused[listener, default: 0] += 1
                return false
            }
            open[listener, default: 0] += 1
            counters.served[listener, default: 0] += 1
            return true
        }
    }

    public func release(_ listener: String) { lock.withLock { open[listener, default: 1] -= 1 } }
}

/// Binds one TCP listener whose connections pass `gate` (with `allow`; empty allows all) and
/// then get `configure`d. A port that cannot be had is one sentence naming the profile key.
func bindListener(
    group: any EventLoopGroup, endpoint e: Endpoint, key: String, listener: String, gate: ConnectionGate,
    allow: [CIDR], logger: Logger, configure: @escaping @Sendable (any Channel) throws -> Void
) async throws -> any Channel {
    let bootstrap = ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            let allowed = allow.isEmpty || peerAddress(channel).map { a in allow.contains { $0.contains(a) } } == true
            guard gate.admit(listener, allowed: allowed) else {
                channel.close(promise: nil)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            channel.closeFuture.whenComplete { _ in gate.release(listener) }
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
            reason: "\(String(cString: strerror(err.errnoCode))); choose another \(key) or stop what holds the port")
    }
}

/// The peer's address as an `IPAddress`, IPv4-mapped IPv6 (`::ffff:192.0.2.1`, from a `[::]`
/// listener) turned back into IPv4 so IPv4 networks match it.
func peerAddress(_ channel: any Channel) -> IPAddress? {
    guard let text = channel.remoteAddress?.ipAddress else { return nil }
    if text.hasPrefix("::ffff:"), text.contains("."), let v4 = IPAddress(String(text.dropFirst(7))) { return v4 }
    return IPAddress(text)
}

/// Adds NIO's HTTP/1.1 server pipeline (request heads bounded by its parser, malformed requests
/// answered 400), a 10 s idle timeout and `AnswerHTTP`.
func configureHTTP(_ channel: any Channel, answer: @escaping (HTTPRequestHead, any Channel) -> HTTPAnswer) throws {
    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
    try channel.pipeline.syncOperations.addHandlers([
        IdleStateHandler(readTimeout: .seconds(10)), CloseWhenIdle(), AnswerHTTP(answer: answer),
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

/// One HTTP/1.1 exchange at a time, keep-alive honoured. No endpoint takes a body: a request
/// body is discarded, and more than 64 KiB of it closes the connection.
final class AnswerHTTP: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let answer: (HTTPRequestHead, any Channel) -> HTTPAnswer
    private var request: HTTPRequestHead?
    private var bodyBytes = 0

    init(answer: @escaping (HTTPRequestHead, any Channel) -> HTTPAnswer) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            request = h
            bodyBytes = 0
        case .body(let b):
            bodyBytes += b.readableBytes
            if bodyBytes > 64 * 1024 { context.close(promise: nil) }
        case .end:
            guard let h = request else { return }
            request = nil
            respond(context: context, head: h, with: answer(h, context.channel))
        }
    }

    private func respond(context: ChannelHandlerContext, head h: HTTPRequestHead, with r: HTTPAnswer) {
        let keepAlive = h.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: r.contentType)
        headers.add(name: "Content-Length", value: String(r.body.utf8.count))
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        for (k, v) in r.headers { headers.add(name: k, value: v) }
        let head = HTTPResponseHead(
            version: h.version, status: .init(statusCode: r.status, reasonPhrase: r.reason), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if h.method != .HEAD {
            let body = context.channel.allocator.buffer(string: r.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            writeLastAndClose(context, wrapOutboundOut(.end(nil)))
        }
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
