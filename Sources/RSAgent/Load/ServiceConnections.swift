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
