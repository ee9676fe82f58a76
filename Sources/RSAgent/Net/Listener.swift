import Logging
import NIOCore
import NIOPosix
import Netlink

#if canImport(Glibc)
    import Glibc
#endif

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
