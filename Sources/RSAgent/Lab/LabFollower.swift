import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// The weights the lab's director gives its realservers, from what their agents say: the
/// agent's weight while it is ready, 0 when it drains, is in maintenance, is down or cannot be
/// read. Without I/O.
public struct LabWeights: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var role: String
        public var rip: IPAddress
        public var weight: Int
        /// Why the weight is 0 (`drain`, `unreachable`, …); nil while ready.
        public var why: String?
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// One entry per realserver: `readings` nil when the agent could not be read.
    public init(_ readings: [(role: String, rip: IPAddress, reading: AgentReading?)]) {
        entries = readings.map { r in
            guard let reading = r.reading else { return Entry(role: r.role, rip: r.rip, weight: 0, why: "unreachable") }
            let weight = reading.weight(max: 100)
            return Entry(
                role: r.role, rip: r.rip, weight: weight, why: weight > 0 ? nil : reading.stateWord)
        }
    }

    /// The ECMP route's nexthops: the realservers with a weight (a drained one is removed).
    public var nexthops: [(IPAddress, Int)] { entries.filter { $0.weight > 0 }.map { ($0.rip, $0.weight) } }

    /// Whether the director should be told `self` when it has `old`. An ECMP route has no
    /// connection table: every change of its weights re-hashes some flows onto another
    /// realserver (which resets them), so it changes only when a realserver enters or leaves
    /// or a weight moves by 10 or more. IPVS keeps its connections and follows every change.
    public func differs(from old: LabWeights?, ecmp: Bool) -> Bool {
        guard let old, old.entries.count == entries.count else { return true }
        return zip(old.entries, entries).contains { o, n in
            (o.weight == 0) != (n.weight == 0) || (ecmp ? abs(o.weight - n.weight) >= 10 : o.weight != n.weight)
        }
    }

    /// `rs1 10.77.0.11 weight 0 (drain), rs2 10.77.0.12 weight 97`
    public var summary: String {
        entries.map { e in "\(e.role) \(e.rip) weight \(e.weight)" + (e.why.map { " (\($0))" } ?? "") }
            .joined(separator: ", ")
    }
}

/// `rsagent lab`'s director following the agents, as keepalived or HAProxy would: once a
/// second it reads every agent's report and, when the weights changed, sets them — the ECMP
/// route's nexthop weights (a realserver with weight 0 is left out; with none left the VIP is
/// unreachable), or the IPVS real servers' weights with `ipvsadm -e`. Runs in the director's
/// namespace as a process of its own (`rsagent lab --follow-director`), so that a kept lab
/// keeps following; each change is a line of its output.
public final class LabFollower {
    let net = LabNetwork()
    let ipvsadm: String?
    let say: (String) -> Void
    private var applied: LabWeights?

    /// `ipvsadm`: the tool's path for an IPVS director; nil for the ECMP route.
    public init(ipvsadm: String?, say: @escaping (String) -> Void) {
        self.ipvsadm = ipvsadm
        self.say = say
    }

    /// Follows until `stop` says so.
    public func run(stop: () -> Bool) {
        while !stop() {
            let started = monotonicSeconds()
            follow()
            let rest = 1 - (monotonicSeconds() - started)
            if rest > 0 { usleep(UInt32(rest * 1e6)) }
        }
    }

    /// One round: read the agents, set the weights if they changed.
    func follow() {
        let readings = net.realservers.map { rs in
            (
                rs.role, rs.address,
                try? readAgent(host: rs.address.description, port: LabProfile.loadHTTPPort, timeout: 1)
            )
        }
        let weights = LabWeights(readings)
        guard weights.differs(from: applied, ecmp: ipvsadm == nil) else { return }
        do {
            if let ipvsadm { try setIPVS(weights, ipvsadm: ipvsadm) } else { try setECMP(weights) }
            applied = weights
            say("\(isoTime(wallSeconds())) director: \(weights.summary)")
        } catch {
            // Not "director:": the lab waits for that word as the sign the weights were set.
            say("\(isoTime(wallSeconds())) director failed: setting \(weights.summary): \(error)")
        }
    }

    private func setECMP(_ weights: LabWeights) throws {
        try RouteSocket().replaceRoute(to: LabNetwork.vip, prefix: 32, weighted: weights.nexthops)
    }

    /// Weight 0 is IPVS's drain: no new connections, the established ones stay.
    private func setIPVS(_ weights: LabWeights, ipvsadm: String) throws {
        for port in [LabProfile.testPort, LabProfile.testHTTPPort] {
            for e in weights.entries {
                let args = [
                    "-e", "-t", "\(LabNetwork.vip):\(port)", "-r", "\(e.rip):\(port)", "-g", "-w", String(e.weight),
                ]
                let output = temporaryDirectory() + "rsagent-lab-ipvsadm-\(getpid()).txt"
                defer { unlink(output) }
                let r = try LabProcess.run(ipvsadm, args, output: output, timeout: 10)
                guard r.status == 0 else {
                    throw SystemError(
                        operation: "ipvsadm \(args.joined(separator: " "))", errno: 0, reason: r.text.trimmed)
                }
            }
        }
    }
}
