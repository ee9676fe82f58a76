import NIOCore

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
