import Netlink

/// Who polls the load report, and whether each poller has seen a drain yet. Without I/O.
///
/// A drain is over only when the directors have stopped sending new connections. Counting
/// connections is not enough for that: a director that polls every 5 s keeps sending clients for
/// up to 5 s after `drain`, and a realserver that sees 0 connections in that gap and removes its
/// VIPs (`on_stop: drain`) drops them. So the agent remembers who reads `/load`, `/weight` and
/// the agent-check port (by address, as keepalived opens a new connection for every check) and
/// how often, and the wait also lasts until every regular reader has read the report twice since
/// the drain began: a director acts on one check before it makes the next (keepalived sets the
/// weight when its check program exits, HAProxy when the agent's line comes), so its second read
/// proves the first one's weight 0 is in force. Waiting a fixed moment after the first read is
/// not enough on a loaded director.
public struct DirectorReads: Sendable {
    struct Reader: Sendable {
        var last: Double
        /// The gap between its last two reads: how often it polls.
        var interval: Double?
        /// Its reads since the state changed.
        var sinceChange = 0
    }

    /// How long past twice its interval a silent director is still waited for.
    static let grace = 1.0
    /// Readers are remembered this long after their last read.
    static let memory = 600.0
    /// Pollers slower than this are not waited for (keepalived's default `delay_loop` is 60 s);
    /// an operator running `rsagent weight` now and then is not a director.
    static let slowestPoll = 120.0

    private var readers: [IPAddress: Reader] = [:]
    /// When the state last became drain or maint.
    private var changedAt: Double?

    public init() {}

    /// A read of the report by `peer` at `now` (monotonic seconds). Keyed by address, not its
    /// text: this runs for every `/load` read.
    public mutating func read(by peer: IPAddress, at now: Double) {
        var r = readers[peer] ?? Reader(last: now)
        if readers[peer] != nil { r.interval = now - r.last }
        r.last = now
        if let changedAt, now >= changedAt { r.sinceChange += 1 }
        readers[peer] = r
        if readers.count > 64 { readers = readers.filter { now - $0.value.last < Self.memory } }
    }

    /// The state became drain or maint at `now`: every director must read it anew.
    public mutating func stateChanged(at now: Double) {
        changedAt = now
        for k in readers.keys { readers[k]!.sinceChange = 0 }
    }

    /// The directors whose reading of the change is still awaited at `now`, sorted: readers
    /// that poll regularly (read at least twice, the last within three of their intervals before
    /// the change) and have not read twice since. A director that stays silent for twice its
    /// interval after the change (and a second) is taken to be gone.
    public func pending(at now: Double) -> [String] {
        guard let changedAt else { return [] }
        return readers.compactMap { peer, r -> IPAddress? in
            guard let interval = r.interval, interval > 0, interval <= Self.slowestPoll else { return nil }
            let regular = r.sinceChange > 0 || r.last >= changedAt - 3 * interval - Self.grace
            guard regular, r.sinceChange < 2 else { return nil }
            let silentSince = r.sinceChange > 0 ? r.last : changedAt
            return now < silentSince + 2 * interval + Self.grace ? peer : nil
        }.sorted().map(\.description)
    }
}
