import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// Takes `LoadSample`s from the running kernel: `/proc/stat`, `/proc/loadavg`, `/proc/meminfo`,
/// and established connections per declared TCP service through `NETLINK_SOCK_DIAG`.
/// Not thread-safe: one sampler per sampling loop.
public final class LoadSampler {
    private var diagnostics: SocketDiagnostics?
    private var previousCPU: CPUTimes?
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    public init() {}

    /// One sample. `services` are the profile's VIPs; UDP services are not counted.
    public func sample(vips: [VIP]) throws -> LoadSample {
        let started = monotonicSeconds()
        let cpuNow = try read("/proc/stat") { CPUTimes.parse(procStat: $0) }
        let cpu = previousCPU.flatMap { CPUTimes.utilisation(from: $0, to: cpuNow) }
        previousCPU = cpuNow
        let load = try read("/proc/loadavg") { LoadAverage.parse($0) }
        let memory = try read("/proc/meminfo") { MemoryInfo.parse($0) }
        let services = try connections(vips: vips)
        return LoadSample(
            time: wallSeconds(), cpu: cpu, loadAverage: load, cpus: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
            memory: memory, services: services, duration: monotonicSeconds() - started)
    }

    /// One kernel dump per (family, port), shared by every VIP carrying that port.
    func connections(vips: [VIP]) throws -> [ServiceLoad] {
        let wanted = vips.flatMap { v in v.services.filter { $0.proto == .tcp }.map { (v.address, $0) } }
        guard !wanted.isEmpty else { return [] }
        if diagnostics == nil { diagnostics = try SocketDiagnostics() }
        var byKey: [String: [IPAddress: Int]] = [:]
        var out: [ServiceLoad] = []
        for (vip, service) in wanted {
            let key = "\(vip.isIPv4 ? 4 : 6)/\(service.port)"
            if byKey[key] == nil {
                byKey[key] = try diagnostics!.establishedCounts(ipv6: !vip.isIPv4, port: service.port)
            }
            out.append(ServiceLoad(vip: vip, service: service, established: byKey[key]![vip] ?? 0))
        }
        return out
    }

    /// Reads a small /proc file in one `read` and parses it; /proc files are generated on read,
    /// so one call returns the whole of a file this size.
    private func read<T>(_ path: String, _ parse: (Substring) -> T?) throws -> T {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SystemError.current("reading \(path) for the load report")
        }
        defer { close(fd) }
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else {
            throw SystemError.current("reading \(path) for the load report")
        }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        guard let v = parse(text[...]) else {
            throw SystemError(operation: "reading \(path) for the load report", errno: 0, reason: "unexpected format")
        }
        return v
    }
}

public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

public func wallSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
