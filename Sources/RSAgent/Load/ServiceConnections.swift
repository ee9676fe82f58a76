import Netlink

/// Established connections to the VIP services, counted by the kernel's socket diagnostics as
/// the load report counts them: what `drain --wait` watches.
public final class ServiceConnections {
    public let services: [Endpoint]
    private let diagnostics: SocketDiagnostics

    public init(services: [Endpoint]) throws {
        self.services = services
        diagnostics = try SocketDiagnostics()
    }

    /// The TCP services of `profile`'s VIPs (UDP has no connections to wait for).
    public static func services(of profile: Profile) -> [Endpoint] {
        profile.vips.flatMap { v in
            v.services.filter { $0.proto == .tcp }.map { Endpoint(host: v.address, port: $0.port) }
        }
    }

    /// Connections per service, one kernel dump per (family, port).
    public func count() throws -> DrainWait.Counts {
        var dumps: [String: [IPAddress: Int]] = [:]
        return try services.map { e in
            let key = "\(e.host.isIPv4 ? 4 : 6)/\(e.port)"
            if dumps[key] == nil { dumps[key] = try diagnostics.establishedCounts(ipv6: !e.host.isIPv4, port: e.port) }
            return (e.description, dumps[key]![e.host] ?? 0)
        }
    }

    /// Connections per client address, over all the services.
    public func clients() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for group in Dictionary(grouping: services, by: { "\($0.host.isIPv4 ? 4 : 6)/\($0.port)" }).values {
            let first = group[0]
            let counts = try diagnostics.establishedClients(
                ipv6: !first.host.isIPv4, port: first.port, local: Set(group.map(\.host)))
            for (a, n) in counts { out[a.description, default: 0] += n }
        }
        return out
    }
}

/// One drain being waited for: counts the connections (and asks which directors have yet to
/// read the new state) each time it is polled, and says how long to pause before the next
/// poll. Both waits use it: `drain --wait` in the CLI and `on_stop: drain` in the daemon; each
/// prints, sleeps and decides when to give up in its own way.
public final class DrainWatch {
    public private(set) var wait: DrainWait
    private let counter: ServiceConnections
    private let directors: () -> [String]
    private let start = monotonicSeconds()

    /// `directors`: the directors yet to read the state (the daemon's board, or the admin
    /// socket's `directors` query).
    public init(services: [Endpoint], until: Int, directors: @escaping () -> [String]) throws {
        counter = try ServiceConnections(services: services)
        wait = DrainWait(until: until)
        self.directors = directors
    }

    public var elapsed: Double { monotonicSeconds() - start }

    /// Counts once. `changed`: the count (or the directors awaited) differs from the last poll;
    /// `pause`: when to poll again (`DrainWait.interval`).
    public func poll() throws -> (changed: Bool, pause: Double) {
        let t0 = monotonicSeconds()
        let counts = try counter.count()
        let changed = wait.update(counts, directors: directors())
        return (changed, DrainWait.interval(afterCounting: monotonicSeconds() - t0))
    }

    /// Who is still connected, busiest first (empty if the kernel cannot be asked).
    public func busiestClients() -> [(String, Int)] { DrainWait.busiest((try? counter.clients()) ?? [:]) }
}
