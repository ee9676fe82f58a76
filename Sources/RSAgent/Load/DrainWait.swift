/// `rsagent drain --wait` / `maint --wait`, without I/O: connections per VIP service as they
/// are counted over time, whether the wait is over, and what the operator reads (a live line on
/// a terminal, a line per change otherwise, or a JSON object per line).
public struct DrainWait: Sendable {
    /// Established connections per service (`192.0.2.100:80`), in the order of the profile.
    public typealias Counts = [(service: String, connections: Int)]

    /// Done when the connections left are at most this.
    public let until: Int
    /// What was left when the wait began: the bar's 0 %.
    public private(set) var initial: Int?
    public private(set) var counts: Counts = []
    /// Directors that have not yet read the new state (`DirectorReads`): until they have, new
    /// connections may still come.
    public private(set) var directors: [String] = []

    public init(until: Int) { self.until = until }

    public var left: Int { counts.reduce(0) { $0 + $1.connections } }
    public var drained: Bool { left <= until && directors.isEmpty }

    /// Takes a new count; true when it differs from the last one (a line to print).
    public mutating func update(_ new: Counts, directors: [String] = []) -> Bool {
        let changed =
            initial == nil || new.map(\.connections) != counts.map(\.connections) || directors != self.directors
        counts = new
        self.directors = directors
        if initial == nil { initial = left }
        return changed
    }

    /// How long to wait before counting again, from how long a count took: a quarter second,
    /// stretched so that counting never takes more than 5 % of a CPU (19,000 connections take
    /// about 20 ms to count), and never beyond a second.
    public static func interval(afterCounting seconds: Double) -> Double {
        min(1, max(0.25, seconds * 20))
    }

    /// `draining: 3 connections left (192.0.2.100:80 2, 192.0.2.100:443 1) · 12s [####------] 40%`
    public func line(state: AdminState, elapsed: Double) -> String {
        let busy = counts.filter { $0.connections > 0 }.map { "\($0.service) \($0.connections)" }
        let detail = busy.isEmpty ? "" : " (" + busy.joined(separator: ", ") + ")"
        let what = until == 0 ? "" : ", waiting for \(until) or fewer"
        let readers =
            directors.isEmpty
            ? ""
            : " · waiting for \(directors.count == 1 ? "director" : "directors") \(directors.joined(separator: ", ")) to read \(state.rawValue)"
        return
            "\(state.rawValue): \(plural(left, "connection")) left\(detail)\(what)\(readers) · \(Int(elapsed))s \(bar())"
    }

    /// How far from the count when waiting began: `[##########] 100%` when drained.
    func bar(width: Int = 10) -> String {
        let start = max(initial ?? 0, until)
        let done = start <= until ? 1.0 : Double(start - max(left, until)) / Double(start - until)
        let filled = Int((done * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + "\(Int((done * 100).rounded(.down)))%"
    }

    /// `{"t":…,"connections":{"192.0.2.100:80":2},"left":2}`, with `"directors":[…]` while
    /// directors have yet to read the new state; the final object adds `drained`,
    /// `elapsed_s` and, when the wait failed, `clients` (address → connections).
    public func json(time: Double, final elapsed: Double? = nil, clients: [(String, Int)]? = nil) -> String {
        var fields = [
            "\"t\":\(formatted(time))",
            "\"connections\":{" + counts.map { "\(jsonString($0.service)):\($0.connections)" }.joined(separator: ",")
                + "}",
            "\"left\":\(left)",
        ]
        if !directors.isEmpty {
            fields.append("\"directors\":[" + directors.map(jsonString).joined(separator: ",") + "]")
        }
        if let elapsed {
            fields.append("\"drained\":\(drained)")
            fields.append("\"elapsed_s\":\(formatted(elapsed))")
        }
        if let clients {
            fields.append("\"clients\":{" + clients.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",") + "}")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The sentence for a wait that ended before the services drained: what is still connected
    /// and who (the busiest `clients` first).
    /// `staying`: the admin state stays (`--wait`); false when the daemon is stopping.
    public func unfinished(
        state: AdminState, after elapsed: Double, because reason: String, clients: [(String, Int)],
        staying: Bool = true
    ) -> String {
        let busy = counts.filter { $0.connections > 0 }.map { "\($0.service) \($0.connections)" }
        let who = clients.prefix(5).map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        let what = staying ? "\(state.rawValue) --wait" : state.rawValue
        let after =
            staying
            ? "; the admin state stays \(state.rawValue) (`rsagent ready` undoes it)" : "; removing the VIPs now"
        let readers =
            directors.isEmpty ? "" : "; directors yet to read \(state.rawValue): \(directors.joined(separator: ", "))"
        return "\(what): \(reason) after \(Int(elapsed))s with \(plural(left, "connection")) left"
            + (busy.isEmpty ? "" : " (" + busy.joined(separator: ", ") + ")") + (who.isEmpty ? "" : "; clients: \(who)")
            + readers + after
    }

    /// Client addresses by connections, busiest first (then by address, for a stable order).
    public static func busiest(_ clients: [String: Int]) -> [(String, Int)] {
        clients.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    private func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

    private func formatted(_ x: Double) -> String {
        let ms = (x * 1000).rounded()
        return "\(Int(ms) / 1000).\(String(Int(ms) % 1000 + 1000).dropFirst())"
    }

    private func jsonString(_ s: String) -> String { (try? JSON.encode(s)) ?? "\"\"" }
}
