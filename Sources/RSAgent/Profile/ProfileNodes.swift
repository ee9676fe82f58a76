import Netlink
import YAML

#if canImport(Glibc)
    import Glibc
#endif

// Reading YAML nodes as profile values: each helper reports a problem with the node's line and
// column and returns nil, so decoding goes on and every problem is listed.
extension ProfileDecoder {
    mutating func problem(_ node: Node?, _ message: String) {
        let m = node?.mark
        problems.append(ProfileProblem(file: file, line: m?.line ?? 1, column: m?.column ?? 1, message: message))
    }

    func controlProblem(_ c: (line: Int, column: Int, scalar: Unicode.Scalar)) -> ProfileProblem {
        let name =
            c.scalar.value == 0
            ? "a NUL byte" : "control character 0x" + String(c.scalar.value, radix: 16, uppercase: true)
        return ProfileProblem(
            file: file, line: c.line, column: c.column,
            message: "this is not a text file: \(name) here; a profile is plain UTF-8 YAML (is this the right file?)")
    }

    func yamlProblem(_ e: YAMLError, text: String) -> ProfileProblem {
        let at = e.mark
        // libyaml's wording for a tab ("cannot start any token", "violates indentation") does
        // not say "tab": say it, and what to do.
        if Self.character(in: text, line: at.line, column: at.column) == "\t" || e.problem.includes("tab") {
            return ProfileProblem(
                file: file, line: at.line, column: at.column,
                message:
                    "this is not valid YAML: a tab character here; YAML indents with spaces only, so replace the tab with spaces"
            )
        }
        return ProfileProblem(file: file, line: at.line, column: at.column, message: "this is not valid YAML: \(e)")
    }

    /// The character at a 1-based line and column, if there is one.
    static func character(in text: String, line: Int, column: Int) -> Character? {
        guard line >= 1, column >= 1 else { return nil }
        let lines = text.split(separator: "\n", maxSplits: line, omittingEmptySubsequences: false)
        guard line <= lines.count else { return nil }
        let l = lines[line - 1]
        return column <= l.count ? l[l.index(l.startIndex, offsetBy: column - 1)] : nil
    }

    /// A control character (a NUL byte, binary data) as one located problem: libyaml's own
    /// report spans several lines and quotes the unprintable byte.
    static func controlCharacter(in text: String) -> (line: Int, column: Int, scalar: Unicode.Scalar)? {
        var line = 1, column = 1
        for u in text.unicodeScalars {
            if u == "\n" { line += 1; column = 1; continue }
            if u.value < 0x20 && u != "\t" && u != "\r" || u.value == 0x7F { return (line, column, u) }
            column += 1
        }
        return nil
    }

    /// The keys of a mapping, by the table `keys` (each key spelled once, in its enum),
    /// reporting unknown and duplicate keys.
    mutating func fields<Key: RawRepresentable & CaseIterable & Hashable>(
        _ node: Node, _ keys: Key.Type, context: String
    ) -> [Key: Node] where Key.RawValue == String {
        guard case .mapping(let mapping, _) = node else {
            problem(node, "\(context) must be a mapping of `key: value` lines")
            return [:]
        }
        var out: [Key: Node] = [:]
        for (k, v) in mapping {
            guard let name = k.string else { problem(k, "keys in \(context) must be plain words"); continue }
            guard let key = Key(rawValue: name) else {
                let allowed = keys.allCases.map(\.rawValue)
                var msg = "unknown key `\(name)` in \(context)"
                if let near = allowed.min(by: { editDistance($0, name) < editDistance($1, name) }),
                    editDistance(near, name) <= 2
                {
                    msg += "; did you mean `\(near)`?"
                } else {
                    msg += "; known keys: \(allowed.joined(separator: ", "))"
                }
                problem(k, msg)
                continue
            }
            if out[key] != nil { problem(k, "key `\(name)` appears twice in \(context)"); continue }
            out[key] = v
        }
        return out
    }

    mutating func list(_ node: Node, _ what: String) -> [Node] {
        switch node {
        case .sequence(let s, _): return s
        default:
            problem(node, "`\(what)` must be a list (`[a, b]` or one `- item` per line)")
            return []
        }
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let s) = node, !Self.isNull(node) else {
            problem(node, "\(what) must be a single value, not \(Self.shape(node))")
            return nil
        }
        return s.string
    }

    mutating func int(_ node: Node, _ what: String) -> Int? {
        guard case .scalar(let s) = node, let i = Int(s.string) else {
            problem(node, "\(what) must be a whole number, not \(Self.shape(node))")
            return nil
        }
        return i
    }

    /// A number (`1`, `0.5`) within `range`.
    mutating func number(_ node: Node, _ what: String, in range: ClosedRange<Double>, unit: String) -> Double? {
        guard case .scalar(let s) = node, let d = Double(s.string), d.isFinite else {
            problem(node, "\(what) must be a number, not \(Self.shape(node))")
            return nil
        }
        return within(node, what, d, s.string, range, unit)
    }

    /// Seconds, written as a number or with a unit (`90`, `90s`, `500ms`, `5m`, `1h`).
    mutating func duration(_ node: Node, _ what: String, in range: ClosedRange<Double>) -> Double? {
        guard case .scalar(let s) = node, let d = parseDuration(s.string) else {
            problem(node, "\(what) must be a duration such as 60s, 5m or 90 (seconds)")
            return nil
        }
        return within(node, what, d, s.string, range, "seconds")
    }

    private mutating func within(
        _ node: Node, _ what: String, _ d: Double, _ text: String, _ range: ClosedRange<Double>, _ unit: String
    ) -> Double? {
        guard range.contains(d) else {
            problem(node, "\(what) \(text) must be \(range.lowerBound.formatted)–\(range.upperBound.formatted) \(unit)")
            return nil
        }
        return d
    }

    mutating func port(_ node: Node, _ what: String) -> Int? {
        guard let p = int(node, what) else { return nil }
        guard (1...65535).contains(p) else { problem(node, "\(what) \(p) is not a port (1–65535)"); return nil }
        return p
    }

    mutating func endpoint(_ node: Node, _ what: String) -> Endpoint? {
        guard let s = string(node, what) else { return nil }
        guard let e = Endpoint(s) else {
            problem(node, "\(what) `\(s)` must be ADDRESS:PORT, e.g. 0.0.0.0:3334 or [::]:3334")
            return nil
        }
        return e
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ what: String) -> T?
    where T.RawValue == String {
        guard let s = string(node, what) else { return nil }
        if let v = T(rawValue: s) { return v }
        problem(node, "\(what) `\(s)` is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        return nil
    }

    /// YAML's null spellings, for an unquoted scalar (the basic resolver leaves them as text).
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node else { return false }
        if s.style == .singleQuoted || s.style == .doubleQuoted { return s.string.isEmpty }
        switch s.string {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    static func shape(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s): return isNull(node) ? "empty" : "`\(s.string)`"
        }
    }
}
extension Double {
    /// `1` rather than `1.0`, for messages.
    var formatted: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var prev = Array(0...b.count)
    for i in 1...a.count {
        var cur = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return prev[b.count]
}

// The keys of each mapping in a profile, in the order the messages list them.

enum ProfileKey: String, CaseIterable {
    case mode, device, deviceName = "device_name", interfaces, vips, arp, rpFilter = "rp_filter"
    case load, testService = "test_service", stateDir = "state_dir", onStop = "on_stop"
    case initialState = "initial_state", include, drainTimeout = "drain_timeout", tunnel
}
enum TunnelKey: String, CaseIterable { case type, port, outer, csum, mss }
enum ARPKey: String, CaseIterable { case ignore, announce, scope }
enum VIPKey: String, CaseIterable { case address, services }
enum IncludedFileKey: String, CaseIterable { case vips }
enum LoadKey: String, CaseIterable {
    case http, agentCheck = "agent_check", allow, weight, interval, smoothing, hysteresis, thresholds
    case slowStart = "slow_start"
}
enum ThresholdKey: String, CaseIterable { case cpu, load, memory, connections }
enum WeightKey: String, CaseIterable { case max, min }
enum TestServiceKey: String, CaseIterable { case port, httpPort = "http_port" }
