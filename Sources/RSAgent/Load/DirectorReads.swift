import Netlink

/// Who polls the load report, and whether each poller has acted on a drain yet. Without I/O.
///
/// A drain is over only when the directors have stopped sending new connections. Counting
/// connections is not enough for that: a director that polls every 5 s keeps sending clients for
/// up to 5 s after `drain`, and a realserver that sees 0 connections in that gap and removes its
/// VIPs (`on_stop: drain`) drops them. So the agent remembers when each address read `/load`,
/// `/weight` or the agent-check port (by address: keepalived opens a new connection for every
/// check), and a drain also waits until every regular reader has acted on it.
///
/// One address is often several checkers: keepalived runs one check per virtual service (`:80`
/// and `:443` of the same realserver), HAProxy one per backend, each on its own timer. Their
/// reads interleave, so the gap between two reads says little about how long one checker takes
/// to come round. `period(of:)` finds that from the reads' recurrence instead, and a director has
/// acted once its reads since the drain span a whole period (every checker has read it) and a
/// moment has passed for the last of them to set its weight. A single checker's second read is
/// then also the proof that its first one's weight 0 is in force: it acts on one check before it
/// makes the next.
public struct DirectorReads: Sendable {
    /// How long past twice its period a silent director is still waited for.
    static let grace = 1.0
    /// Time for a checker to act on what it read (keepalived sets the weight when its check
    /// program exits, HAProxy when the agent's line comes: milliseconds, more on a loaded host).
    static let acting = 1.0
    /// Reads are remembered this long, and at most this many per address.
    static let memory = 600.0
    static let kept = 256
    /// Pollers slower than this are not waited for (keepalived's default `delay_loop` is 60 s);
    /// an operator running `rsagent weight` now and then is not a director.
    static let slowestPoll = 120.0

    /// Read times per address, oldest first.
    private var readers: [IPAddress: [Double]] = [:]
    /// When the state last became drain or maint.
    private var changedAt: Double?

    public init() {}

    /// A read of the report by `peer` at `now` (monotonic seconds). Keyed by address, not its
    /// text: this runs for every `/load` read.
    public mutating func read(by peer: IPAddress, at now: Double) {
        var times = readers[peer] ?? []
        times.append(now)
        if times.count > Self.kept || times[0] < now - Self.memory {
            times.removeFirst(max(times.prefix { $0 < now - Self.memory }.count, times.count - Self.kept))
        }
        readers[peer] = times
        if readers.count > 64 { readers = readers.filter { now - ($0.value.last ?? 0) < Self.memory } }
    }

    /// The state became drain or maint at `now`: every director must read it anew.
    public mutating func stateChanged(at now: Double) { changedAt = now }

    /// The directors whose acting on the change is still awaited at `now`, sorted: readers that
    /// poll regularly (their last read before the change within three periods of it) and whose
    /// reads since the change do not yet span a period, or did less than a moment ago. A director
    /// that stays silent for twice its period after the change (and a second) is taken to be gone.
    public func pending(at now: Double) -> [String] {
        guard let changedAt else { return [] }
        return readers.compactMap { peer, times -> IPAddress? in
            guard let period = Self.period(of: times), period > 0, period <= Self.slowestPoll else { return nil }
            let since = times.drop { $0 < changedAt }
            if since.isEmpty {
                guard let before = times.last, before >= changedAt - 3 * period - Self.grace else { return nil }
            } else if since.count >= 2, since.last! - since.first! >= 0.9 * period,
                now >= since.first! + period + Self.acting
            {
                return nil
            }
            return now < (since.last ?? changedAt) + 2 * period + Self.grace ? peer : nil
        }.sorted().map(\.description)
    }

    /// How long the slowest of the checkers behind `times` (ascending) takes to come round: for
    /// each read, the shortest lag at which it recurs twice (three times where the reads go back
    /// far enough), each step matched within 15 % of the lag; the longest of those, and never
    /// less than the longest gap between reads. Nil for fewer than two reads.
    ///
    /// A lag shorter than 0.8 of the longest gap cannot be a checker's period (the fastest one
    /// reads within every period of its own), which keeps one checker's read from pairing with
    /// another's a moment later. Jitter that breaks a chain makes the estimate longer, not
    /// shorter: the wait errs on the safe side.
    static func period(of times: [Double]) -> Double? {
        guard times.count >= 2, let last = times.last else { return nil }
        let longestGap = zip(times.dropFirst(), times).map { $0 - $1 }.max()!
        var longest = longestGap
        for (i, r) in times.enumerated() {
            for j in (i + 1)..<times.count where times[j] - r >= 0.8 * longestGap {
                let lag = times[j] - r
                let tolerance = max(0.05, 0.15 * lag)
                guard times[j] + lag <= last + tolerance else { break }
                guard let second = read(near: times[j] + lag, within: tolerance, in: times) else { continue }
                if second + lag <= last + tolerance, read(near: second + lag, within: tolerance, in: times) == nil {
                    continue
                }
                longest = max(longest, lag)
                break
            }
        }
        return longest
    }

    /// The read closest to `t` if one is within `tolerance` (binary search: `times` ascending).
    private static func read(near t: Double, within tolerance: Double, in times: [Double]) -> Double? {
        var lo = 0
        var hi = times.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if times[mid] < t - tolerance { lo = mid + 1 } else { hi = mid }
        }
        return lo < times.count && times[lo] <= t + tolerance ? times[lo] : nil
    }
}
