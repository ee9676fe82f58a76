import Netlink

/// `tunnel.mss`: the MSS this realserver advertises in its SYN-ACKs from the VIPs.
///
/// The director wraps every client packet in its tunnel headers (20 to 52 bytes). A client
/// that sends full-size segments (MSS 1460 on a 1500-byte path) then needs the director's
/// "fragmentation needed" to reach it, and many clients never get it (dropped ICMP): uploads
/// stall. Advertising a smaller MSS from the VIPs makes clients send segments that fit.
public enum MSSClamp: Hashable, Sendable, Codable {
    case off
    /// The facing interfaces' smallest MTU, less the largest tunnel overhead, the inner IP
    /// header and TCP's.
    case auto
    case fixed(Int)
}

/// The nftables table rsagent owns for the clamp (`table inet rsagent`): one chain on the
/// output hook with a rule per VIP family that lowers, never raises, the MSS option of
/// SYN-ACKs leaving from the VIPs. Without I/O: the commands and the comment that marks the
/// table as rsagent's and says what it holds.
public struct MSSRuleset: Hashable, Sendable {
    public static let table = "rsagent"
    /// The start of the table's comment: the mark that the table is rsagent's.
    public static let mark = "rsagent: owned, do not edit"

    public struct Family: Hashable, Sendable {
        public var mss: Int
        public var vips: [IPAddress]
    }
    public var ipv4: Family?
    public var ipv6: Family?

    /// The clamp `profile` asks for, with the facing interfaces' smallest MTU (for `auto`);
    /// nil when it asks for none.
    public init?(_ profile: Profile, facingMTU: Int?) {
        guard profile.mode == .tun, let t = profile.tunnel, t.mss != .off else { return nil }
        let overhead = t.largestOverhead.bytes
        func family(_ ipv4: Bool) -> Family? {
            let vips = profile.vips.map(\.address).filter { $0.isIPv4 == ipv4 }.sorted()
            guard !vips.isEmpty else { return nil }
            switch t.mss {
            case .off: return nil
            case .fixed(let n): return Family(mss: n, vips: vips)
            case .auto:
                guard let mtu = facingMTU else { return nil }
                return Family(mss: Self.fitting(mtu: mtu, overhead: overhead, ipv4: ipv4), vips: vips)
            }
        }
        ipv4 = family(true)
        ipv6 = family(false)
        if ipv4 == nil && ipv6 == nil { return nil }
    }

    /// The largest MSS whose segments still fit `mtu` once the tunnel (`overhead`), the inner IP
    /// header and TCP's are added.
    public static func fitting(mtu: Int, overhead: Int, ipv4: Bool) -> Int { mtu - overhead - (ipv4 ? 20 : 40) - 20 }

    var rules: [String] {
        [("ip", ipv4), ("ip6", ipv6)].compactMap { keyword, f in
            f.map {
                "\(keyword) saddr { \($0.vips.map(\.description).joined(separator: ", ")) } tcp flags & (syn | ack) == (syn | ack) tcp option maxseg size > \($0.mss) tcp option maxseg size set \($0.mss)"
            }
        }
    }

    /// The table's comment: the mark, the values, and a digest of the rules, so that another
    /// profile (or a hand-edited table) shows as a difference.
    public var comment: String {
        let values = [("ipv4", ipv4), ("ipv6", ipv6)].compactMap { name, f in
            f.map { "\(name) \($0.mss) (\($0.vips.count) VIP\($0.vips.count == 1 ? "" : "s"))" }
        }
        return "\(Self.mark); mss \(values.joined(separator: ", ")); \(fnv1a(rules.joined(separator: "\n")))"
    }

    /// Replaces the table in one transaction (`nft -f`): created when missing, deleted, made anew.
    public var commands: String {
        """
        table inet \(Self.table)
        delete table inet \(Self.table)
        table inet \(Self.table) {
            comment "\(comment)"
            chain mss_clamp {
                type filter hook output priority mangle; policy accept;
        \(rules.map { "        " + $0 }.joined(separator: "\n"))
            }
        }

        """
    }

    public static let deleteCommand = "delete table inet \(table)\n"

    /// The table rsagent owns among `tables`, if one is there.
    public static func owned(in tables: [NFTable]) -> NFTable? {
        tables.first { $0.name == table && ($0.comment ?? "").hasPrefix(mark) }
    }

    private func fnv1a(_ text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }
}

extension TunnelSettings {
    /// The largest overhead of these encapsulations (bytes, and which: "gue over IPv4"): what
    /// the MSS must leave room for.
    public var largestOverhead: (bytes: Int, what: String) {
        var worst = (bytes: 0, what: "")
        for type in types {
            for outer in outer {
                let n = Decapsulation.overhead(type, outer: outer, csum: csum)
                if n > worst.bytes { worst = (n, "\(type.rawValue) over \(outer == .ipv4 ? "IPv4" : "IPv6")") }
            }
        }
        return worst
    }
}
