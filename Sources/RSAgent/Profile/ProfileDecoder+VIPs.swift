import Netlink
import YAML

#if canImport(Glibc)
    import Glibc
#endif

// `vips:`, `include:` and the VIPs of included files.
extension ProfileDecoder {
    /// `include:` — one pattern or a list; each matching file holds only `vips:`, merged into
    /// this profile. Its problems carry its own file name.
    mutating func decodeIncludes(_ n: Node, ipv4Only: Bool, problems out: inout [ProfileProblem]) -> [VIP] {
        var patterns: [Node] = []
        if case .sequence = n { patterns = list(n, "include") } else { patterns = [n] }
        guard let readInclude else {
            problem(n, "`include:` needs the profile to be read from a file")
            return []
        }
        var vips: [VIP] = []
        for p in patterns {
            guard let pattern = string(p, "include") else { continue }
            for (path, text) in readInclude(pattern) {
                var sub = ProfileDecoder(file: path)
                sub.seenVIPs = seenVIPs
                vips += sub.decodeIncluded(text, ipv4Only: ipv4Only)
                seenVIPs = sub.seenVIPs
                out += sub.problems.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
            }
        }
        return vips
    }

    /// One included file: a mapping with `vips:` and nothing else.
    mutating func decodeIncluded(_ text: String?, ipv4Only: Bool) -> [VIP] {
        guard let text else {
            problems.append(
                ProfileProblem(
                    file: file, line: 0, column: 0,
                    message: "reading this included file failed: \(Self.unreadableReason(file)); fix it or remove it"))
            return []
        }
        if let bad = Self.controlCharacter(in: text) {
            problems.append(controlProblem(bad))
            return []
        }
        let root: Node?
        do { root = try compose(text) } catch {
            problems.append(yamlProblem(error, text: text))
            return []
        }
        guard let root, case .mapping = root else {
            if root != nil { problem(root, "an included file must be a YAML mapping with `vips:`") }
            return []  // an empty file adds nothing
        }
        let f = fields(root, IncludedFileKey.self, context: "an included file (only `vips:` may be set here)")
        return f[.vips].map { decodeVIPs($0, ipv4Only: ipv4Only, allowEmpty: true) } ?? []
    }

    mutating func decodeVIPs(_ n: Node, ipv4Only: Bool, allowEmpty: Bool = false) -> [VIP] {
        guard case .sequence(let items, _) = n else {
            problem(n, "`vips` must be a list (`[a, b]` or one `- item` per line)")
            return []
        }
        if items.isEmpty && !allowEmpty {
            problem(n, "`vips:` is empty; list at least one VIP (to remove every VIP, run `rsagent down`)")
        }
        // Sized up front: growing these by rehashing was most of decoding a 10,000-VIP profile.
        var out: [VIP] = []
        out.reserveCapacity(items.count)
        var seen = seenVIPs
        seen.reserveCapacity(seen.count + items.count)
        defer { seenVIPs = seen }
        for item in items {
            var addrNode = item
            var services: [ServicePort] = []
            if case .mapping = item {
                let f = fields(item, VIPKey.self, context: "a VIP")
                guard let a = f[.address] else { problem(item, "this VIP has no `address:`"); continue }
                addrNode = a
                if let s = f[.services] { services = decodeServices(s) }
            }
            guard let text = string(addrNode, "VIP") else { continue }
            guard let ip = parseVIP(text, node: addrNode) else { continue }
            if let first = seen[ip] {
                let at = first.file == file ? "on line \(first.line)" : "in \(first.file) on line \(first.line)"
                problem(addrNode, "VIP \(ip) is listed twice (first \(at))"); continue
            }
            if ipv4Only && !ip.isIPv4 {
                problem(
                    addrNode,
                    "VIP \(ip) is IPv6, but tunl0 holds IPv4 VIPs only; for IPv6 VIPs in tun mode say `device: lo`")
                continue
            }
            seen[ip] = (file, addrNode.mark.line)
            out.append(VIP(address: ip, services: services))
        }
        return out
    }

    mutating func parseVIP(_ text: String, node: Node) -> IPAddress? {
        // Byte-wise split: Character search costs more than the rest of decoding together.
        var addrText = text
        var prefix: Int?
        if let slash = text.utf8.firstIndex(of: UInt8(ascii: "/")) {
            addrText = String(text[..<slash])
            prefix = Int(text[text.utf8.index(after: slash)...])
            if prefix == nil { problem(node, "VIP `\(text)` has a malformed prefix length"); return nil }
        }
        guard let ip = IPAddress(addrText) else {
            problem(node, "VIP `\(text)` is not an IPv4 or IPv6 address"); return nil
        }
        if let prefix, prefix != ip.hostPrefixLength {
            problem(
                node,
                "VIP `\(text)` must be a single address (/\(ip.hostPrefixLength)): a wider prefix on a non-ARPing device would make this host claim the whole network; write `\(ip)`"
            )
            return nil
        }
        if let why = Self.unusableVIPReason(ip) { problem(node, "VIP \(ip) \(why)"); return nil }
        return ip
    }

    /// Why an address cannot be a VIP, or nil.
    static func unusableVIPReason(_ ip: IPAddress) -> String? {
        let b0 = ip.byte(0), b1 = ip.byte(1)
        if ip.isUnspecified { return "is the unspecified address" }
        if ip.isIPv4 {
            if b0 == 127 { return "is a loopback address (127.0.0.0/8); clients cannot reach it" }
            if b0 >= 224 && b0 <= 239 { return "is a multicast address" }
            if b0 >= 240 { return "is reserved or broadcast (240.0.0.0/4)" }
            if b0 == 169 && b1 == 254 { return "is link-local (169.254.0.0/16); directors cannot route to it" }
            if b0 == 0 { return "is in 0.0.0.0/8, which is not routable" }
        } else {
            if ip.isInside(IPAddress("::1")!, prefix: 128) { return "is the loopback address ::1" }
            if b0 == 0xff { return "is a multicast address" }
            if b0 == 0xfe && b1 & 0xc0 == 0x80 { return "is link-local (fe80::/10); directors cannot route to it" }
            if ip.isInside(IPAddress("::ffff:0.0.0.0")!, prefix: 96) {
                return "is an IPv4-mapped IPv6 address; write the IPv4 address"
            }
        }
        return nil
    }

    mutating func decodeServices(_ n: Node) -> [ServicePort] {
        var out: [ServicePort] = []
        for item in list(n, "services") {
            guard let s = string(item, "service") else { continue }
            let parts = s.lowercased().split(separator: "/")
            guard parts.count == 2, let proto = ServicePort.Proto(rawValue: String(parts[0])),
                let port = Int(parts[1]), (1...65535).contains(port)
            else {
                problem(item, "service `\(s)` must be PROTO/PORT with PROTO tcp or udp and PORT 1–65535, e.g. tcp/80")
                continue
            }
            let sp = ServicePort(proto: proto, port: port)
            if out.contains(sp) { problem(item, "service \(sp) is listed twice for this VIP"); continue }
            out.append(sp)
        }
        return out
    }
}
