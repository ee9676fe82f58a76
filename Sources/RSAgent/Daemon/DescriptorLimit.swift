import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Open files the daemon may need: its own (netlink sockets, state files, the admin socket)
/// plus every listener full to its cap.
public func descriptorsNeeded(_ profile: Profile) -> Int {
    let load = profile.load.map { [$0.http, $0.agentCheck].compactMap { $0 }.count } ?? 0
    let test = profile.testService.map { $0.httpPort == nil ? 1 : 2 } ?? 0
    return 64 + load * LoadBoard.connectionCap + test * TestServer.connectionCap
}

/// Raises the soft open-file limit to what the listeners' caps need (up to the hard limit):
/// a daemon that runs out of descriptors refuses connections its caps promised to hold.
/// Under systemd the unit's `LimitNOFILE=` already gives enough and nothing is called.
public func ensureDescriptorRoom(_ profile: Profile, logger: Logger) {
    let need = rlim_t(descriptorsNeeded(profile))
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < need else { return }
    let wanted = min(need, limit.rlim_max)
    var raised = limit
    raised.rlim_cur = wanted
    if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) != 0 || wanted < need {
        logger.warning(
            "the open-file limit is \(limit.rlim_cur) (hard \(limit.rlim_max)) but the listeners' caps need \(need); connections beyond it will fail; raise it (LimitNOFILE= in the unit, or ulimit -n)"
        )
    }
}

/// Gives back the pages of this program's own file that start-up touched and the idle daemon
/// does not use again — argument parsing, profile decoding, the first apply, the runtime's
/// first conformance scans: `madvise(MADV_PAGEOUT)` over the executable's mappings. Clean file
/// pages are simply dropped (nothing is written); whatever the daemon runs later comes back on
/// first touch. Pages other processes share (libc) are left alone by the kernel.
/// Returns the bytes advised, for the log.
@discardableResult
public func pageOutStartupCode() -> Int {
    guard let exe = symlinkTarget("/proc/self/exe"), let maps = readTextFile("/proc/self/maps") else { return 0 }
    var advised = 0
    for line in maps.split(separator: "\n") where line.hasSuffix(" " + exe) {
        let range = line.prefix { $0 != " " }.split(separator: "-")
        guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
            let p = UnsafeMutableRawPointer(bitPattern: start)
        else { continue }
        if madvise(p, Int(end - start), 21 /* MADV_PAGEOUT, Linux 5.4 */) == 0 { advised += Int(end - start) }
    }
    return advised
}
