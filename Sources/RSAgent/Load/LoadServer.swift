import Logging

/// The load report's listeners: HTTP (`load.http`) and the HAProxy agent-check protocol
/// (`load.agent_check`), on one thread of their own (`Reactor`). Read-only: nothing a reader
/// sends changes state.
///
/// Every connection passes the board's gate first: a peer outside `load.allow`, or one over the
/// connection cap, is closed unanswered and counted in
/// `rsagent_listener_refused_connections_total`. HTTP connections idle for 10 s are closed.
public final class LoadServer: DaemonService, @unchecked Sendable {
    private let stopped = ShutdownLatch()
    private let board: LoadBoard
    private let settings: LoadSettings
    private let logger: Logger
    private let reactor: Reactor

    public init(board: LoadBoard, settings: LoadSettings, logger: Logger) throws {
        self.board = board
        self.settings = settings
        self.logger = logger
        reactor = try Reactor(name: "rsagent-load")
    }

    /// Binds every configured listener, before the daemon reports ready.
    public func bind() throws {
        let board = self.board
        if let e = settings.http {
            try reactor.add(
                Listener(
                    endpoint: e, key: "load.http", name: "http", gate: board.gate, allow: settings.allow,
                    conversation: .http(repeatable: false) { h, conn in
                        if h.path == "/load" || h.path == "/weight" { board.noteRead(by: conn.peer?.ip) }
                        return loadHTTPResponse(
                            method: h.method, uri: h.path, report: board.report,
                            counters: board.gate.listenerCounters, health: board.health.snapshot, now: wallSeconds())
                    }))
            logger.notice("load.http listening on \(e)")
        }
        if let e = settings.agentCheck {
            try reactor.add(
                Listener(
                    endpoint: e, key: "load.agent_check", name: "agent_check", gate: board.gate,
                    allow: settings.allow,
                    conversation: .sayOneLine { conn in
                        board.noteRead(by: conn.peer?.ip)
                        return board.report?.agentCheckLine ?? "down\n"
                    }))
            logger.notice("load.agent_check listening on \(e)")
        }
        reactor.start()
    }

    public func shutdown() { stopped.trip() }

    /// Serves until `shutdown`, then closes the listeners.
    public func run() async throws {
        await stopped.wait()
        await reactor.stop()
    }
}
