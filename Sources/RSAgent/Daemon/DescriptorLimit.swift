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
