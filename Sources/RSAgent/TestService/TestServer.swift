import Logging
import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// The "which machine answered" service (the classic inetd `lvs-info` on port 31337), on the
/// wildcard address so every VIP is answered, on one thread of its own (`Reactor`):
///
/// - plain TCP on `test_service.port`: one `TestAnswer` line on connect, then close;
/// - HTTP on `test_service.http_port`: `GET /` gives the same line, or JSON for
///   `Accept: application/json`; keep-alive honoured.
///
/// At most `cap` connections per listener (more are closed at once and counted); HTTP
/// connections idle for 10 s are closed; nothing a client sends is kept beyond one bounded
/// request head.
public final class TestServer: DaemonService, @unchecked Sendable {
    private let stopped = ShutdownLatch()
    public let gate: ConnectionGate
    private let settings: TestServiceSettings
    private let host: String
    private let rip: String
    private let mode: Mode
    private let logger: Logger
    private let reactor: Reactor

    /// Connections each test-service listener holds at once.
    public static let connectionCap = 1024

    public init(
        settings: TestServiceSettings, mode: Mode, rip: IPAddress?, logger: Logger, cap: Int = TestServer.connectionCap
    ) throws {
        self.settings = settings
        self.mode = mode
        self.rip = rip?.description ?? "-"
        self.logger = logger
        host = hostName()
        gate = ConnectionGate(cap: cap)
        reactor = try Reactor(name: "rsagent-test")
    }

    /// The answer for one connection, from the addresses the kernel gives its socket.
    func answer(_ connection: Connection) -> TestAnswer {
        TestAnswer(
            host: host, rip: rip, local: connection.local?.text ?? "-", client: connection.peer?.text ?? "-",
            mode: mode.rawValue)
    }

    /// Binds both listeners on `[::]` (which takes IPv4 too), or on 0.0.0.0 where IPv6 is off.
    public func bind() throws {
        try bindWildcard(
            port: settings.port, key: "test_service.port", name: "tcp", .sayOneLine { self.answer($0).line })
        if let port = settings.httpPort {
            try bindWildcard(
                port: port, key: "test_service.http_port", name: "http",
                .http(repeatable: true) { h, connection in
                    testHTTPResponse(
                        method: h.method, uri: h.path, wantsJSON: h.wantsJSON, answer: self.answer(connection))
                })
        }
        reactor.start()
    }

    private func bindWildcard(port: Int, key: String, name: String, _ conversation: Listener.Conversation) throws {
        func listen(_ host: String) throws {
            let e = Endpoint(host: IPAddress(host)!, port: port)
            try reactor.add(
                Listener(endpoint: e, key: key, name: name, gate: gate, allow: [], conversation: conversation))
            logger.notice("\(key) listening on \(e)")
        }
        do { try listen("::") } catch let e as SystemError where e.errno == EAFNOSUPPORT || e.errno == EADDRNOTAVAIL {
            try listen("0.0.0.0")
        }
    }

    public func shutdown() { stopped.trip() }

    /// Serves until `shutdown`, then closes the listeners.
    public func run() async throws {
        await stopped.wait()
        await reactor.stop()
    }
}

extension TestServer {
    /// The test service of `profile`, bound and ready; nil when the profile has no `test_service`.
    public static func start(profile: Profile, logger: Logger) async throws -> TestServer? {
        guard let settings = profile.testService else { return nil }
        let server = try TestServer(
            settings: settings, mode: profile.mode, rip: lookUpPrimaryAddress(profile: profile), logger: logger)
        try server.bind()
        return server
    }
}
