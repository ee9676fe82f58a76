import Netlink
import YAML

// `tunnel:` of `mode: tun`.
extension ProfileDecoder {
    /// `tunnel: {type, port, outer, csum, mss}`; absent: ipip over IPv4, as before the key existed.
    mutating func decodeTunnel(_ node: Node?) -> TunnelSettings {
        var t = TunnelSettings()
        guard let node else { return t }
        let f = fields(node, TunnelKey.self, context: "`tunnel:`")
        if let n = f[.type] { t.types = distinctChoices(n, "tunnel.type") ?? t.types }
        if let n = f[.outer] { t.outer = distinctChoices(n, "tunnel.outer") ?? t.outer }
        if let n = f[.port], let p = port(n, "tunnel.port") {
            if t.types.contains(.gue) {
                t.port = p
            } else {
                problem(n, "tunnel.port is GUE's UDP port (`--tun-port`); remove it, or add gue to tunnel.type")
            }
        } else if t.types.contains(.gue) && f[.port] == nil {
            problem(
                f[.type] ?? node,
                "tunnel.type gue needs tunnel.port: the UDP port the director sends to (`ipvsadm … --tun-port 6080`)")
        }
        if let n = f[.csum], let s = string(n, "tunnel.csum") {
            switch s {
            case "false": t.csum = false
            case "true" where t.types.contains(.gre): t.csum = true
            case "true":
                problem(
                    n,
                    "tunnel.csum is for GRE with checksums (`--tun-csum`); remove it, or add gre to tunnel.type")
            default: problem(n, "tunnel.csum must be true or false, not `\(s)`")
            }
        }
        if let n = f[.mss], let s = string(n, "tunnel.mss") {
            switch s {
            case "off": t.mss = .off
            case "auto": t.mss = .auto
            default:
                if let v = Int(s), (536...9000).contains(v) {
                    t.mss = .fixed(v)
                } else {
                    problem(
                        n,
                        "tunnel.mss `\(s)` must be auto (from the facing MTU and the tunnel's overhead), a size 536–9000, or off"
                    )
                }
            }
        }
        return t
    }

    /// One value or a list of them, each once.
    mutating func distinctChoices<T: RawRepresentable & CaseIterable & Equatable>(_ n: Node, _ what: String) -> [T]?
    where T.RawValue == String {
        let items: [Node]
        if case .sequence = n { items = list(n, what) } else { items = [n] }
        var out: [T] = []
        for item in items {
            guard let v: T = choice(item, what) else { continue }
            if out.contains(v) { problem(item, "\(what) lists \(v.rawValue) twice") } else { out.append(v) }
        }
        if items.isEmpty {
            problem(n, "\(what) must name at least one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return out.isEmpty ? nil : out
    }
}
