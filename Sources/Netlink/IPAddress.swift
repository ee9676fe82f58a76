#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 address as two machine words (network byte order, big-endian halves).
///
/// A plain value with no heap storage: planning 10,000 VIPs hashes, compares and sorts these
/// tens of thousands of times. Parsing and printing go through `inet_pton`/`inet_ntop`, so the
/// text is exactly what `ip` prints (compressed IPv6, no zone).
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// Bytes 0–7 (IPv6) or 0 (IPv4).
    let high: UInt64
    /// Bytes 8–15 (IPv6) or the IPv4 address in the low 32 bits.
    let low: UInt64
    public let isIPv4: Bool

    /// Parses dotted-quad IPv4 or textual IPv6; nil for anything else (prefixes, zones, names).
    public init?(_ text: String) {
        var raw = in6_addr()
        if text.utf8.contains(UInt8(ascii: ":")) {
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            self.init(bytes: withUnsafeBytes(of: &raw) { UnsafeRawBufferPointer($0) })
        } else {
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self.init(bytes: withUnsafeBytes(of: &raw) { UnsafeRawBufferPointer(rebasing: $0[0..<4]) })
        }
    }

    /// Builds an address from raw network-order bytes (4 or 16).
    public init?(bytes: [UInt8]) {
        guard let a = bytes.withUnsafeBytes({ IPAddress(bytes: $0) }) else { return nil }
        self = a
    }

    init?(bytes b: UnsafeRawBufferPointer) {
        func word(_ from: Int, _ count: Int) -> UInt64 {
            var w: UInt64 = 0
            for i in from..<(from + count) { w = w << 8 | UInt64(b[i]) }
            return w
        }
        switch b.count {
        case 4: high = 0; low = word(0, 4); isIPv4 = true
        case 16: high = word(0, 8); low = word(8, 8); isIPv4 = false
        default: return nil
        }
    }

    public var bytes: [UInt8] {
        let n = isIPv4 ? 4 : 16
        return (0..<n).map { i in
            let w = isIPv4 || i >= 8 ? low : high
            let shift = isIPv4 ? (3 - i) * 8 : (7 - i % 8) * 8
            return UInt8(truncatingIfNeeded: w >> UInt64(shift))
        }
    }

    /// Byte `i` in network order (0–3 for IPv4, 0–15 for IPv6), without building `bytes`.
    public func byte(_ i: Int) -> UInt8 {
        if isIPv4 { return UInt8(truncatingIfNeeded: low >> UInt64((3 - i) * 8)) }
        return UInt8(truncatingIfNeeded: (i < 8 ? high : low) >> UInt64((7 - i % 8) * 8))
    }

    /// `0.0.0.0` or `::`.
    public var isUnspecified: Bool { high == 0 && low == 0 }

    /// `AF_INET` or `AF_INET6`.
    public var family: Int32 { isIPv4 ? AF_INET : AF_INET6 }

    /// 32 or 128: the prefix length of a host address, the only kind a VIP may be.
    public var hostPrefixLength: Int { isIPv4 ? 32 : 128 }

    /// Dotted quad for IPv4, written directly (glibc's inet_ntop formats with sprintf, which
    /// dominated printing 10,000 addresses); RFC 5952 text from inet_ntop for IPv6.
    public var description: String {
        if isIPv4 {
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { buf in
                var n = 0
                for i in 0..<4 {
                    if i > 0 { buf[n] = UInt8(ascii: "."); n += 1 }
                    let b = byte(i)
                    if b >= 100 { buf[n] = 0x30 + b / 100; n += 1 }
                    if b >= 10 { buf[n] = 0x30 + b / 10 % 10; n += 1 }
                    buf[n] = 0x30 + b % 10; n += 1
                }
                return String(decoding: UnsafeBufferPointer(rebasing: buf[0..<n]), as: UTF8.self)
            }
        }
        var raw = bytes
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN) + 1) { buf in
            guard
                raw.withUnsafeMutableBytes({
                    inet_ntop(AF_INET6, $0.baseAddress, buf.baseAddress, socklen_t(buf.count))
                }) != nil
            else { return "?" }
            return String(cString: buf.baseAddress!)
        }
    }

    public func hash(into h: inout Hasher) {
        h.combine(high)
        h.combine(low)
        h.combine(isIPv4)
    }

    /// Dictionaries and sets of addresses use this instead of SipHash: planning 10,000 VIPs
    /// does tens of thousands of lookups, and the keys come from the operator's profile and
    /// the kernel, so resistance to hash flooding buys nothing here. (A 64-bit mix with the
    /// per-process seed, in the style of splitmix64/murmur3's finaliser.)
    public func _rawHashValue(seed: Int) -> Int {
        var x = high &* 0x9E37_79B9_7F4A_7C15 ^ low ^ UInt64(bitPattern: Int64(seed)) ^ (isIPv4 ? 0x5BD1_E995 : 0)
        x ^= x >> 33
        x = x &* 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x = x &* 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return Int(truncatingIfNeeded: x)
    }

    /// IPv4 sorts before IPv6; within a family, numeric order.
    public static func < (l: IPAddress, r: IPAddress) -> Bool {
        if l.isIPv4 != r.isIPv4 { return l.isIPv4 }
        return (l.high, l.low) < (r.high, r.low)
    }

    /// True when `self` lies inside `network/prefix`.
    public func isInside(_ network: IPAddress, prefix: Int) -> Bool {
        guard network.isIPv4 == isIPv4 else { return false }
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? ~0 : ~0 << UInt64(64 - bits) }
        if isIPv4 {
            let m = mask(prefix) >> 32
            return low & m == network.low & m
        }
        return high & mask(prefix) == network.high & mask(prefix)
            && low & mask(prefix - 64) == network.low & mask(prefix - 64)
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
