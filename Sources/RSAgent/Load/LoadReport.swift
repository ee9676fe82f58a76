#if canImport(Glibc)
    import Glibc
#endif

/// What directors are told about this realserver: `up`, or `down` while they must not send
/// traffic here — the host does not match the profile, or a deliberate `rsagent down` holds the
/// VIPs off it (`LoadReport.reason` says which).
public enum ServingState: String, Sendable, Codable {
    case up, down
}

/// Everything the load report says at one moment: the body of `GET /load`, and the source of
/// `/weight`, `/metrics` and the agent-check line.
public struct LoadReport: Sendable, Codable, Equatable {
    public var host: String
    /// The realserver's own address (RIP) on the interface facing the director.
    public var rip: String?
    public var version: String = RSAgentVersion.string
    public var adminState: AdminState
    public var state: ServingState = .up
    /// False while the host does not match the profile (a conflict, a failed apply, the first
    /// pass not done yet): directors are then told `down` and weight 0.
    public var converged: Bool = true
    /// Why the state is `down`; nil while up.
    public var reason: String?
    /// What directors should use, 0–100 (percent of capacity).
    public var weight: Int
    /// `load.weight.min` and `max`: a weight pinned at the minimum is a realserver at capacity.
    public var weightMin: Int = 1
    public var weightMax: Int = 100
    /// With `load.slow_start`: how far the ramp after entering `ready` is (factor 1 when over).
    public var slowStart: SlowStartStatus?
    /// The unsmoothed capacity of the most constrained metric, 0–100.
    public var target: Double
    public var smoothed: Double
    public var limitedBy: String?
    /// Remaining capacity per metric, 0–100.
    public var capacity: [String: Double]
    public var metrics: Metrics
    /// When the sample was taken: ISO 8601 UTC, and seconds since the epoch.
    public var sampledAt: String
    public var sampleTime: Double
    public var intervalSeconds: Double

    public struct Metrics: Sendable, Codable, Equatable {
        /// 0…1 over the last interval; nil on the first sample.
        public var cpuUtilisation: Double?
        public var load1: Double
        public var load5: Double
        public var load15: Double
        public var cpus: Int
        public var load1PerCPU: Double
        public var memoryTotalBytes: UInt64
        public var memoryAvailableBytes: UInt64
        public var services: [ServiceLoad]
        public var sampleDurationSeconds: Double

        enum CodingKeys: String, CodingKey {
            case cpuUtilisation = "cpu_utilisation", load1, load5, load15, cpus
            case load1PerCPU = "load1_per_cpu", memoryTotalBytes = "memory_total_bytes"
            case memoryAvailableBytes = "memory_available_bytes", services
            case sampleDurationSeconds = "sample_duration_seconds"
        }
    }

    enum CodingKeys: String, CodingKey {
        case host, rip, version, adminState = "admin_state", state, converged, reason, weight, target, smoothed
        case weightMin = "weight_min", weightMax = "weight_max", slowStart = "slow_start"
        case limitedBy = "limited_by", capacity, metrics, sampledAt = "sampled_at"
        case sampleTime = "sample_time", intervalSeconds = "interval_seconds"
    }

    public init(
        host: String, rip: String?, admin: AdminState, sample: LoadSample,
        decision: WeightPolicy.Decision, interval: Double
    ) {
        self.host = host
        self.rip = rip
        adminState = admin
        weight = decision.weight
        target = (decision.target * 10).rounded() / 10
        smoothed = (decision.smoothed * 10).rounded() / 10
        limitedBy = decision.limitedBy?.rawValue
        capacity = Dictionary(
            uniqueKeysWithValues: decision.capacities.map { ($0.key.rawValue, ($0.value * 10).rounded() / 10) })
        metrics = Metrics(
            cpuUtilisation: sample.cpu.map { ($0 * 1000).rounded() / 1000 }, load1: sample.loadAverage.one,
            load5: sample.loadAverage.five, load15: sample.loadAverage.fifteen, cpus: sample.cpus,
            load1PerCPU: (sample.loadPerCPU * 1000).rounded() / 1000, memoryTotalBytes: sample.memory.totalBytes,
            memoryAvailableBytes: sample.memory.availableBytes, services: sample.services,
            sampleDurationSeconds: sample.duration)
        sampleTime = sample.time
        sampledAt = isoTime(sample.time)
        intervalSeconds = interval
    }

    /// The same report with a new admin state, effective at once (no new sample needed).
    public func with(admin: AdminState, weight: Int) -> LoadReport {
        var r = self
        r.adminState = admin
        r.weight = weight
        return r
    }

    /// The report as directors must see it given what the reconciler knows: `down`, weight 0
    /// and the reason while the host is held down or does not match the profile.
    public func serving(_ health: HealthSnapshot) -> LoadReport {
        var r = self
        r.converged = health.notConverged == nil
        if let why = health.outOfService {
            r.state = .down
            r.reason = why
            r.weight = 0
        } else {
            r.state = .up
            r.reason = nil
        }
        return r
    }
    /// The HAProxy agent-check reply (one line, the grammar of HAProxy 2.6: `agent-check` in
    /// its configuration manual). `ready up 75%` puts a server back in service from any
    /// agent-set state and sets its weight to 75 % of the configured one; `drain` keeps
    /// existing sessions and sends no new ones; `maint` takes it out; `down` marks it failed.
    ///
    /// While down, the reason follows a `#`: HAProxy shows that text on its stats page.
    ///
    /// `maint` wins over "not converged": in maintenance the agent deliberately asserts nothing,
    /// and directors should read that, not a fault. A deliberate `rsagent down` wins over both.
    public var agentCheckLine: String {
        let heldDown = state == .down && converged
        if state == .down && (heldDown || adminState != .maint) {
            return reason.map { "down #\(Self.oneLine($0, max: 200))\n" } ?? "down\n"
        }
        switch adminState {
        case .drain: return "drain\n"
        case .maint: return "maint\n"
        case .ready: return "ready up \(weight)%\n"
        }
    }
}

extension LoadReport {
    /// `text` on one line of at most `max` bytes (an agent-check reply is one line).
    static func oneLine(_ text: String, max: Int) -> String {
        var out = String(text.map { $0.isNewline ? " " : $0 })
        if out.utf8.count > max {
            while out.utf8.count > max - 3 { out.removeLast() }
            out += "..."
        }
        return out
    }
}

/// Counters kept by the listeners, for `/metrics`.
public struct ListenerCounters: Sendable, Equatable {
    /// Connections accepted and served, per listener (`http`, `agent_check`).
    public var served: [String: UInt64] = [:]
    /// Connections closed at once because the peer is outside `load.allow` (or a cap was hit).
    public var refused: [String: UInt64] = [:]
    /// Connections closed at the cap to make room, because they had been silent longest.
    public var evicted: [String: UInt64] = [:]
    public init() {}
}

/// Seconds since the epoch as ISO 8601 UTC, with whole seconds (`2026-11-29T08:00:00Z`), by
/// strftime: Foundation's date formatters page in ICU's data, which was most of an idle daemon's
/// memory.
func isoTime(_ t: Double) -> String {
    var secs = time_t(t)
    var parts = tm()
    gmtime_r(&secs, &parts)
    var buf = [CChar](repeating: 0, count: 32)
    let n = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` before each family, base
/// units in the names (`_bytes`, `_seconds`, `_ratio`), counters ending in `_total`.
///
/// `health` adds what the reconciler knows, for alerting: convergence, VIP presence, repairs,
/// conflicts, the last reload, and the effective ARP and rp_filter values of each facing
/// interface.
public func prometheusText(_ r: LoadReport, counters: ListenerCounters, health: HealthSnapshot) -> String {
    var out = ""
    func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
        guard !samples.isEmpty else { return }
        out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        for s in samples { out += "\(name)\(s.labels) \(s.value)\n" }
    }
    func number(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }
    func label(_ pairs: [(String, String)]) -> String {
        "{" + pairs.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
    }
    family(
        "rsagent_build_info", "gauge", "Always 1; the version of rsagent in a label.",
        [(label([("version", r.version)]), "1")])
    family(
        "rsagent_weight", "gauge", "The weight directors are told, 0-100 (percent of capacity); 0 while draining.",
        [("", String(r.weight))])
    family(
        "rsagent_weight_bound", "gauge", "load.weight.min and load.weight.max: the range of the published weight.",
        [(label([("bound", "min")]), String(r.weightMin)), (label([("bound", "max")]), String(r.weightMax))])
    if let ramp = r.slowStart {
        family(
            "rsagent_slow_start_factor", "gauge",
            "load.slow_start: how far the weight's ramp after entering ready is, 0-1 (1: no ramp).",
            [("", number(ramp.factor))])
        family(
            "rsagent_slow_start_remaining_seconds", "gauge", "load.slow_start: seconds left of the ramp.",
            [("", number(ramp.remainingS))])
    }
    family(
        "rsagent_weight_target", "gauge", "Unsmoothed remaining capacity of the most constrained metric, 0-100.",
        [("", number(r.target))])
    family(
        "rsagent_capacity_ratio", "gauge", "Remaining capacity per metric against its threshold, 0-1.",
        r.capacity.keys.sorted().map { (label([("metric", $0)]), number(r.capacity[$0]! / 100)) })
    family(
        "rsagent_admin_state", "gauge", "1 for the current admin state (ready, drain, maint), 0 for the others.",
        AdminState.allCases.map { (label([("state", $0.rawValue)]), r.adminState == $0 ? "1" : "0") })
    family(
        "rsagent_up", "gauge",
        "0 while directors are told down (held down by `rsagent down`, or not converged), else 1.",
        [("", r.state == .down ? "0" : "1")])
    family(
        "rsagent_converged", "gauge",
        "1 while the host matches the profile, else 0 (the reason is in /load and `rsagent status`).",
        [("", health.notConverged == nil ? "1" : "0")])
    family(
        "rsagent_conflicts", "gauge", "Conflicts between the profile and the host found by the last pass.",
        [("", String(health.conflicts))])
    family(
        "rsagent_vip_present", "gauge", "1 when the VIP is on its device, else 0.",
        health.vips.map {
            (label([("vip", $0.vip.description), ("device", $0.device)]), $0.present ? "1" : "0")
        })
    family(
        "rsagent_repairs_total", "counter", "Repairs of drift since the daemon started, by what was repaired.",
        ["address", "device", "link", "sysctl"].map {
            (label([("what", $0)]), String(health.repairs[$0] ?? 0))
        })
    if let reload = health.lastReload {
        family(
            "rsagent_reload_success", "gauge", "1 when the last reload (SIGHUP) took the new profile, else 0.",
            [("", reload.success ? "1" : "0")])
        family(
            "rsagent_reload_timestamp_seconds", "gauge", "When the last reload was asked for, seconds since the epoch.",
            [("", number(reload.at))])
    }
    for (name, help, value) in [
        (
            "rsagent_interface_arp_ignore",
            "Effective arp_ignore (max of all and the interface) of a facing interface.",
            { (f: HealthSnapshot.FacingSysctls) in f.arpIgnore }
        ),
        ("rsagent_interface_arp_announce", "Effective arp_announce of a facing interface.", { $0.arpAnnounce }),
        ("rsagent_interface_rp_filter", "Effective rp_filter of a facing interface.", { $0.rpFilter }),
    ] {
        family(name, "gauge", help, health.facing.map { (label([("interface", $0.interface)]), String(value($0))) })
    }
    if let cpu = r.metrics.cpuUtilisation {
        family(
            "rsagent_cpu_utilisation_ratio", "gauge", "CPU utilisation over the last sample interval, 0-1.",
            [("", number(cpu))])
    }
    family(
        "rsagent_load_average", "gauge", "Run-queue length averaged over 1, 5 and 15 minutes (/proc/loadavg).",
        [("1m", r.metrics.load1), ("5m", r.metrics.load5), ("15m", r.metrics.load15)].map {
            (label([("window", $0.0)]), number($0.1))
        })
    family("rsagent_cpus", "gauge", "Online CPUs.", [("", String(r.metrics.cpus))])
    family(
        "rsagent_memory_total_bytes", "gauge", "MemTotal from /proc/meminfo.",
        [("", String(r.metrics.memoryTotalBytes))])
    family(
        "rsagent_memory_available_bytes", "gauge", "MemAvailable from /proc/meminfo.",
        [("", String(r.metrics.memoryAvailableBytes))])
    family(
        "rsagent_service_established_connections", "gauge",
        "Established TCP connections to a declared service on a VIP (NETLINK_SOCK_DIAG).",
        r.metrics.services.map {
            (label([("vip", $0.vip.description), ("service", $0.service.description)]), String($0.established))
        })
    family(
        "rsagent_sample_timestamp_seconds", "gauge", "When the last sample was taken, seconds since the epoch.",
        [("", number(r.sampleTime))])
    family(
        "rsagent_sample_duration_seconds", "gauge", "How long the last sample took.",
        [("", number(r.metrics.sampleDurationSeconds))])
    let listeners = Set(counters.served.keys).union(counters.refused.keys).union(counters.evicted.keys).sorted()
    family(
        "rsagent_listener_connections_total", "counter", "Connections served by a load-report listener.",
        listeners.map { (label([("listener", $0)]), String(counters.served[$0] ?? 0)) })
    family(
        "rsagent_listener_refused_connections_total", "counter",
        "Connections closed unanswered: peer outside load.allow, or the connection cap reached.",
        listeners.map { (label([("listener", $0)]), String(counters.refused[$0] ?? 0)) })
    family(
        "rsagent_listener_evicted_connections_total", "counter",
        "Connections closed at the cap to make room because they had sent nothing for longest.",
        listeners.map { (label([("listener", $0)]), String(counters.evicted[$0] ?? 0)) })
    return out
}

func escapeLabel(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        default: out.append(c)
        }
    }
    return out
}
