import Logging
import NIOCore
import NIOPosix
import Netlink

/// The "which machine answered" service (the classic inetd `lvs-info` on port 31337), on the
/// wildcard address so every VIP is answered:
///
/// - plain TCP on `test_service.port`: one `TestAnswer` line on connect, then close;
/// - HTTP on `test_service.http_port`: `GET /` gives the same line, or JSON for
///   `Accept: application/json`; keep-alive honoured.
///
/// At most `cap` connections per listener (more are closed at once and counted); HTTP
/// connections idle for 10 s are closed; nothing a client sends is buffered beyond NIO's bounded
/// request-head parser.
public final class TestServer: DaemonService, @unchecked Sendable {
    private let stopped = ShutdownLatch()
    public let gate: ConnectionGate
    private let settings: TestServiceSettings
    private let host: String
    private let rip: String
    private let mode: Mode
    private let logger: Logger
    /// One thread each (two threads for plain TCP measured slower on two CPUs: the accepting
    /// loop hands every connection to the other).
    private let tcpGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let httpGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channels: [any Channel] = []

    /// Connections each test-service listener holds at once.
    public static let connectionCap = 1024

    public init(
        settings: TestServiceSettings, mode: Mode, rip: IPAddress?, logger: Logger, cap: Int = TestServer.connectionCap
    ) {
        self.settings = settings
        self.mode = mode
        self.rip = rip?.description ?? "-"
        self.logger = logger
        host = hostName()
        gate = ConnectionGate(cap: cap)
    }

    /// The answer for one connection, from the addresses the kernel gives its socket.
    func answer(_ channel: any Channel) -> TestAnswer {
        func text(_ a: SocketAddress?) -> String {
            guard let a, let ip = a.ipAddress, let port = a.port else { return "-" }
            return endpointText(ip: ip, port: port)
        }
        return TestAnswer(
            host: host, rip: rip, local: text(channel.localAddress), client: text(channel.remoteAddress),
            mode: mode.rawValue)
    }

    /// Binds both listeners on `[::]` (which takes IPv4 too), or on 0.0.0.0 where IPv6 is off.
    public func bind() async throws {
        channels.append(
            try await bindWildcard(group: tcpGroup, port: settings.port, key: "test_service.port", listener: "tcp") {
                ch in
                try ch.pipeline.syncOperations.addHandler(SayOneLine { self.answer($0).line })
            })
        if let port = settings.httpPort {
            channels.append(
                try await bindWildcard(group: httpGroup, port: port, key: "test_service.http_port", listener: "http") {
                    ch in
                    try configureHTTP(ch, gate: self.gate, repeatable: true) { h, channel in
                        testHTTPResponse(
                            method: h.method, uri: h.path, wantsJSON: h.wantsJSON,
                            answer: self.answer(channel))
                    }
                })
        }
    }

    private func bindWildcard(
        group: MultiThreadedEventLoopGroup, port: Int, key: String, listener: String,
        configure: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> any Channel {
        do {
            return try await bindListener(
                group: group, endpoint: Endpoint(host: IPAddress("::")!, port: port), key: key, listener: listener,
                gate: gate, allow: [], logger: logger, conversational: listener == "http", configure: configure)
        } catch let e as SystemError where e.errno == EAFNOSUPPORT || e.errno == EADDRNOTAVAIL {
            return try await bindListener(
                group: group, endpoint: Endpoint(host: IPAddress("0.0.0.0")!, port: port), key: key,
                listener: listener, gate: gate, allow: [], logger: logger, conversational: listener == "http",
                configure: configure)
        }
    }

    public func shutdown() { stopped.trip() }

    /// Serves until `shutdown`, then closes the listeners.
    public func run() async throws {
        await stopped.wait()
        for c in channels { try? await c.close() }
        try? await tcpGroup.shutdownGracefully()
        try? await httpGroup.shutdownGracefully()
    }
}

extension TestServer {
    /// The test service of `profile`, bound and ready; nil when the profile has no `test_service`.
    public static func start(profile: Profile, logger: Logger) async throws -> TestServer? {
        guard let settings = profile.testService else { return nil }
        let server = TestServer(
            settings: settings, mode: profile.mode, rip: lookUpPrimaryAddress(profile: profile), logger: logger)
        try await server.bind()
        return server
    }
}
