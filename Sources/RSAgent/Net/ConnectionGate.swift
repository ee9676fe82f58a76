import Netlink

/// Admission for the daemon's listeners, so that readers (directors) keep being answered
/// whatever other clients do:
///
/// - a peer outside the allowed networks is closed unanswered and counted;
/// - one source address holds at most `sourceShare` connections of a listener (an eighth of the
///   cap), so a single client can never take every slot;
/// - at the per-listener cap (or at its source's share), a listener whose peers speak first
///   (HTTP) closes the connection that has waited longest without sending a complete request —
///   an idle one, a slowloris trickling a header, a keep-alive between requests — to make room;
///   with none to close, the newcomer is refused.
public final class ConnectionGate: @unchecked Sendable {
    private struct Waiting {
        var listener: String
        var source: IPAddress?
        var connection: Connection
        /// Order of the last complete request (or of the connect): smallest waited longest.
        var since: UInt64
    }
    private let lock = Lock()
    private var counters = ListenerCounters()
    private var open: [String: Int] = [:]
    private var bySource: [String: [IPAddress: Int]] = [:]
    private var waiting: [ObjectIdentifier: Waiting] = [:]
    private var clock: UInt64 = 0
    /// Most connections a listener holds at once.
    public let cap: Int
    /// Most connections one source address holds on one listener.
    public var sourceShare: Int { max(4, cap / 8) }

    public init(cap: Int) { self.cap = cap }

    public var listenerCounters: ListenerCounters { lock.withLock { counters } }

    /// Admits `connection` from `source` on `listener` unless `allowed` is false or no room can
    /// be made. Each admitted connection must be `release`d when it closes.
    func admit(
        _ listener: String, allowed: Bool, connection: Connection, source: IPAddress?, evictWaiting: Bool
    ) -> Bool {
        var victim: Connection?
        let admitted = lock.withLock {
            guard allowed else {
                counters.refused[listener, default: 0] += 1
                return false
            }
            let fromSource = source.map { bySource[listener]?[$0] ?? 0 } ?? 0
            if fromSource >= sourceShare || open[listener, default: 0] >= cap {
                // At its source's share, the source makes room from its own connections.
                let scope = fromSource >= sourceShare ? source : nil
                guard evictWaiting, let v = longestWaiting(listener, source: scope) else {
                    counters.refused[listener, default: 0] += 1
                    return false
                }
                waiting[ObjectIdentifier(v)] = nil
                victim = v
                counters.evicted[listener, default: 0] += 1
            }
            open[listener, default: 0] += 1
            if let source { bySource[listener, default: [:]][source, default: 0] += 1 }
            counters.served[listener, default: 0] += 1
            if evictWaiting {
                clock += 1
                waiting[ObjectIdentifier(connection)] = Waiting(
                    listener: listener, source: source, connection: connection, since: clock)
            }
            return true
        }
        victim?.close()  // outside the lock: its release takes it again
        return admitted
    }

    private func longestWaiting(_ listener: String, source: IPAddress?) -> Connection? {
        waiting.values.filter { $0.listener == listener && (source == nil || $0.source == source) }
            .min { $0.since < $1.since }?.connection
    }

    /// A complete request arrived: the connection has waited no time at all now.
    func requested(_ connection: Connection) {
        lock.withLock {
            guard waiting[ObjectIdentifier(connection)] != nil else { return }
            clock += 1
            waiting[ObjectIdentifier(connection)]?.since = clock
        }
    }

    func release(_ listener: String, _ connection: Connection, source: IPAddress?) {
        lock.withLock {
            open[listener, default: 1] -= 1
            if let source, let n = bySource[listener]?[source] {
                bySource[listener]?[source] = n > 1 ? n - 1 : nil
            }
            waiting[ObjectIdentifier(connection)] = nil
        }
    }
}
