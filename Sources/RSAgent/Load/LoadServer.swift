import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Netlink
import ServiceLifecycle

/// The load report's listeners on SwiftNIO: HTTP (`load.http`) and the HAProxy agent-check
/// protocol (`load.agent_check`). Read-only: nothing a reader sends changes state.
///
/// Every connection is admitted by the board first: a peer outside `load.allow`, or one over
/// the connection cap, is closed unanswered and counted in
/// `rsagent_listener_refused_connections_total`. HTTP connections idle for 10 s are closed;
/// request heads are bounded by NIO's HTTP parser (and answered 400 when malformed).
public final class LoadServer: Service, @unchecked Sendable {
    private let board: LoadBoard
    private let settings: LoadSettings
    private let logger: Logger
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channels: [any Channel] = []

    public init(board: LoadBoard, settings: LoadSettings, logger: Logger) {
        self.board = board
        self.settings = settings
        self.logger = logger
    }

    /// Binds every configured listener, before the daemon reports ready. A port that cannot be
    /// had is one sentence naming the profile key.
    public func bind() async throws {
        if let e = settings.http {
            channels.append(
                try await listen(e, key: "load.http", listener: "http") { ch in
                    try ch.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try ch.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: .seconds(10)), CloseWhenIdle(),
                        LoadHTTPHandler(board: self.board),
                    ])
                })
        }
        if let e = settings.agentCheck {
            channels.append(
                try await listen(e, key: "load.agent_check", listener: "agent_check") { ch in
                    try ch.pipeline.syncOperations.addHandler(AgentCheckHandler(board: self.board))
                })
        }
    }

    private func listen(
        _ e: Endpoint, key: String, listener: String, configure: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> any Channel {
        let board = self.board, allow = settings.allow
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let allowed =
                    allow.isEmpty || peerAddress(channel).map { a in allow.contains { $0.contains(a) } } == true
                guard board.admit(listener, allowed: allowed) else {
                    channel.close(promise: nil)
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                channel.closeFuture.whenComplete { _ in board.release(listener) }
                do {
                    try configure(channel)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        do {
            let ch = try await bootstrap.bind(host: e.host.description, port: e.port).get()
            logger.notice("load report: \(listener) on \(e)")
            return ch
        } catch let err as IOError {
            throw SystemError(
                operation: "listening on \(e) for \(key)", errno: err.errnoCode,
                reason: "\(String(cString: strerror(err.errnoCode))); choose another \(key) or stop what holds the port"
            )
        }
    }

    public func run() async throws {
        try? await gracefulShutdown()
        for c in channels { try? await c.close() }
        try? await group.shutdownGracefully()
    }
}

/// The peer's address as an `IPAddress`, IPv4-mapped IPv6 (`::ffff:192.0.2.1`, from a `[::]`
/// listener) turned back into IPv4 so `load.allow` IPv4 networks match it.
func peerAddress(_ channel: any Channel) -> IPAddress? {
    guard let text = channel.remoteAddress?.ipAddress else { return nil }
    if text.hasPrefix("::ffff:"), text.contains("."), let v4 = IPAddress(String(text.dropFirst(7))) { return v4 }
    return IPAddress(text)
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

/// One HTTP/1.1 exchange at a time, keep-alive honoured; bodies are ignored (no endpoint takes one).
final class LoadHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let board: LoadBoard
    private var request: HTTPRequestHead?

    init(board: LoadBoard) { self.board = board }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): request = h
        case .body: break
        case .end:
            guard let h = request else { return }
            request = nil
            let r = loadHTTPResponse(
                method: h.method.rawValue, uri: h.uri, report: board.report, counters: board.listenerCounters,
                now: wallSeconds())
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
                context.write(
                    wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: r.body)))), promise: nil)
            }
            if keepAlive {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                let done = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
                let channel = context.channel
                done.futureResult.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// HAProxy agent-check: on connect, write one line and close. Anything HAProxy sends
/// (`agent-send`) is ignored.
final class AgentCheckHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let board: LoadBoard

    init(board: LoadBoard) { self.board = board }

    func channelActive(context: ChannelHandlerContext) {
        let line = board.report?.agentCheckLine ?? "down\n"
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: line)), promise: done)
        let channel = context.channel
        done.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
