import Logging
import NIOCore
import NIOPosix

/// The load report's listeners on SwiftNIO: HTTP (`load.http`) and the HAProxy agent-check
/// protocol (`load.agent_check`). Read-only: nothing a reader sends changes state.
///
/// Every connection passes the board's gate first: a peer outside `load.allow`, or one over the
/// connection cap, is closed unanswered and counted in
/// `rsagent_listener_refused_connections_total`. HTTP connections idle for 10 s are closed.
public final class LoadServer: DaemonService, @unchecked Sendable {
    private let stopped = ShutdownLatch()
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

    /// Binds every configured listener, before the daemon reports ready.
    public func bind() async throws {
        let board = self.board
        if let e = settings.http {
            channels.append(
                try await bindListener(
                    group: group, endpoint: e, key: "load.http", listener: "http", gate: board.gate,
                    allow: settings.allow, logger: logger
                ) { ch in
                    try configureHTTP(ch, gate: board.gate) { h, _ in
                        loadHTTPResponse(
                            method: h.method, uri: h.path, report: board.report,
                            counters: board.gate.listenerCounters, health: board.health.snapshot, now: wallSeconds())
                    }
                })
        }
        if let e = settings.agentCheck {
            channels.append(
                try await bindListener(
                    group: group, endpoint: e, key: "load.agent_check", listener: "agent_check", gate: board.gate,
                    allow: settings.allow, logger: logger, conversational: false
                ) { ch in
                    try ch.pipeline.syncOperations.addHandler(
                        SayOneLine { _ in board.report?.agentCheckLine ?? "down\n" })
                })
        }
    }

    public func shutdown() { stopped.trip() }

    /// Serves until `shutdown`, then closes the listeners.
    public func run() async throws {
        await stopped.wait()
        for c in channels { try? await c.close() }
        try? await group.shutdownGracefully()
    }
}
