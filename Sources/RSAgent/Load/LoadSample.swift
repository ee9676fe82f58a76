import Netlink

/// Cumulative CPU time from the first line of `/proc/stat`, in clock ticks.
public struct CPUTimes: Sendable, Equatable {
    /// Ticks spent doing anything but idling or waiting for I/O.
    public var busy: UInt64
    /// All ticks: user, nice, system, idle, iowait, irq, softirq, steal (guest time is already
    /// inside user and nice, so it is not added again).
    public var total: UInt64

    public init(busy: UInt64, total: UInt64) { self.busy = busy; self.total = total }

    /// Utilisation between two readings, 0…1; nil when no time passed (two reads in one tick).
    public static func utilisation(from a: CPUTimes, to b: CPUTimes) -> Double? {
        guard b.total > a.total, b.busy >= a.busy else { return nil }
        return min(1, Double(b.busy - a.busy) / Double(b.total - a.total))
    }

    /// Parses the aggregate `cpu ` line of `/proc/stat`.
    public static func parse(procStat text: Substring) -> CPUTimes? {
        guard let line = text.split(separator: "\n", maxSplits: 1).first, line.hasPrefix("cpu ") else { return nil }
        let fields = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }
        guard fields.count >= 4 else { return nil }
        let total = fields.reduce(0, +)
        let idle = fields[3] + (fields.count > 4 ? fields[4] : 0)
        return CPUTimes(busy: total - idle, total: total)
    }
}

/// `/proc/loadavg`: the 1, 5 and 15 minute run-queue averages.
public struct LoadAverage: Sendable, Equatable, Codable {
    public var one: Double
    public var five: Double
    public var fifteen: Double

    public init(one: Double, five: Double, fifteen: Double) {
        self.one = one; self.five = five; self.fifteen = fifteen
    }

    public static func parse(_ text: Substring) -> LoadAverage? {
        let f = text.split(separator: " ", maxSplits: 3).prefix(3).compactMap { Double($0) }
        guard f.count == 3 else { return nil }
        return LoadAverage(one: f[0], five: f[1], fifteen: f[2])
    }
}

/// `MemTotal` and `MemAvailable` from `/proc/meminfo`, in bytes. `MemAvailable` is the kernel's
/// own estimate of what can be had without swapping (page cache that can be dropped counts).
public struct MemoryInfo: Sendable, Equatable {
    public var totalBytes: UInt64
    public var availableBytes: UInt64

    public init(totalBytes: UInt64, availableBytes: UInt64) {
        self.totalBytes = totalBytes; self.availableBytes = availableBytes
    }

    /// Used share, 0…1.
    public var usedRatio: Double {
        totalBytes == 0 ? 0 : 1 - Double(min(availableBytes, totalBytes)) / Double(totalBytes)
    }

    public static func parse(_ text: Substring) -> MemoryInfo? {
        var total: UInt64?, available: UInt64?
        for line in text.split(separator: "\n") {
            let isTotal = line.hasPrefix("MemTotal:"), isAvailable = line.hasPrefix("MemAvailable:")
            guard isTotal || isAvailable else { continue }
            // "MemTotal:       24591120 kB"
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let kb = UInt64(parts[1]) else { return nil }
            if isTotal { total = kb * 1024 } else { available = kb * 1024 }
            if total != nil && available != nil { break }
        }
        guard let total, let available else { return nil }
        return MemoryInfo(totalBytes: total, availableBytes: available)
    }
}

/// Established connections to one declared service on one VIP.
public struct ServiceLoad: Sendable, Equatable, Codable {
    public var vip: IPAddress
    public var service: ServicePort
    public var established: Int

    public init(vip: IPAddress, service: ServicePort, established: Int) {
        self.vip = vip; self.service = service; self.established = established
    }

    enum CodingKeys: String, CodingKey { case vip, service, established }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vip.description, forKey: .vip)
        try c.encode(service.description, forKey: .service)
        try c.encode(established, forKey: .established)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let v = try c.decode(String.self, forKey: .vip), s = try c.decode(String.self, forKey: .service)
        let parts = s.split(separator: "/")
        guard let a = IPAddress(v), parts.count == 2, let proto = ServicePort.Proto(rawValue: String(parts[0])),
            let port = Int(parts[1])
        else {
            throw DecodingError.dataCorruptedError(forKey: .service, in: c, debugDescription: "not VIP and PROTO/PORT")
        }
        self.init(
            vip: a, service: ServicePort(proto: proto, port: port),
            established: try c.decode(Int.self, forKey: .established))
    }
}

/// One reading of everything the weight is made from.
public struct LoadSample: Sendable, Equatable {
    /// Seconds since the Unix epoch.
    public var time: Double
    /// CPU utilisation over the last interval, 0…1 (nil on the very first reading).
    public var cpu: Double?
    public var loadAverage: LoadAverage
    /// Online CPUs, to normalise the load average.
    public var cpus: Int
    public var memory: MemoryInfo
    /// TCP services only: "established" has no meaning for UDP.
    public var services: [ServiceLoad]
    /// How long taking this sample took, in seconds.
    public var duration: Double

    public init(
        time: Double, cpu: Double?, loadAverage: LoadAverage, cpus: Int, memory: MemoryInfo,
        services: [ServiceLoad] = [], duration: Double = 0
    ) {
        self.time = time; self.cpu = cpu; self.loadAverage = loadAverage; self.cpus = max(1, cpus)
        self.memory = memory; self.services = services; self.duration = duration
    }

    /// The 1-minute load average per CPU.
    public var loadPerCPU: Double { loadAverage.one / Double(cpus) }
}
