#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address, stored as network-order bytes.
///
/// Parsing and printing go through `inet_pton`/`inet_ntop`, so the text is exactly what `ip`
/// prints (compressed IPv6, no zone).
public enum IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    case v4(UInt8, UInt8, UInt8, UInt8)
    case v6([UInt8])

    /// Parses dotted-quad IPv4 or textual IPv6; nil for anything else (prefixes, zones, names).
    public init?(_ text: String) {
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            self = .v6(withUnsafeBytes(of: &raw) { Array($0) })
        } else {
            var raw = in_addr()
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            let b = withUnsafeBytes(of: &raw) { Array($0) }
            self = .v4(b[0], b[1], b[2], b[3])
        }
    }

    /// Builds an address from the raw bytes of a netlink attribute (4 or 16 bytes).
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        case 16: self = .v6(bytes)
        default: return nil
        }
    }

    public var bytes: [UInt8] {
        switch self {
        case let .v4(a, b, c, d): return [a, b, c, d]
        case let .v6(b): return b
        }
    }

    public var isIPv4: Bool { if case .v4 = self { return true } else { return false } }

    /// `AF_INET` or `AF_INET6`.
    public var family: Int32 { isIPv4 ? AF_INET : AF_INET6 }

    /// 32 or 128: the prefix length of a host address, the only kind a VIP may be.
    public var hostPrefixLength: Int { isIPv4 ? 32 : 128 }

    public var description: String {
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var b = bytes
        let ok = b.withUnsafeMutableBytes { raw in
            inet_ntop(family, raw.baseAddress, &out, socklen_t(out.count)) != nil
        }
        guard ok else { return "?" }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// IPv4 sorts before IPv6; within a family, numeric order.
    public static func < (l: IPAddress, r: IPAddress) -> Bool {
        if l.isIPv4 != r.isIPv4 { return l.isIPv4 }
        return l.bytes.lexicographicallyPrecedes(r.bytes)
    }

    /// True when `self` lies inside `network/prefix`.
    public func isInside(_ network: IPAddress, prefix: Int) -> Bool {
        guard network.isIPv4 == isIPv4 else { return false }
        let a = bytes, n = network.bytes
        var bits = prefix
        for i in 0..<a.count where bits > 0 {
            let take = min(8, bits)
            let mask: UInt8 = take == 8 ? 0xff : ~(0xff >> UInt8(take))
            if a[i] & mask != n[i] & mask { return false }
            bits -= take
        }
        return true
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let a = IPAddress(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an IP address: \(s)")
        }
        self = a
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
