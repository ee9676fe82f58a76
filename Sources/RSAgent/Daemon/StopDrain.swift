import Logging

/// `on_stop: drain`, on the first SIGTERM: tell directors `drain` (weight 0; not persisted, so
/// the next start is in service as before), then wait until no connection to the VIP services
/// is left, up to `drain_timeout` or until `stop` trips (a second signal). Progress goes to the
/// log and to systemd (`STATUS=`, what `systemctl status` shows). The VIPs are removed after.
public func drainBeforeStop(
    profile: Profile, board: LoadBoard?, notifier: SystemdNotifier, logger: Logger, stop: ShutdownLatch
) async {
    board?.setAdmin(.drain)
    let services = ServiceConnections.services(of: profile)
    let counter: ServiceConnections
    do { counter = try ServiceConnections(services: services) } catch {
        logger.error("on_stop: drain: counting connections to the VIP services: \(error); removing the VIPs now")
        return
    }
    var wait = DrainWait(until: 0)
    let start = monotonicSeconds()
    while true {
        let t0 = monotonicSeconds()
        do {
            let counts = try counter.count()
            if wait.update(counts) {
                let line = wait.line(state: .drain, elapsed: monotonicSeconds() - start)
                logger.notice("on_stop: \(line)")
                notifier.notify("STATUS=stopping: \(line)")
            }
        } catch {
            logger.error("on_stop: drain: counting connections to the VIP services: \(error); removing the VIPs now")
            return
        }
        let elapsed = monotonicSeconds() - start
        if wait.drained {
            logger.notice("on_stop: drain: no connections left to the VIP services after \(Int(elapsed))s")
            return
        }
        let reason =
            stop.isTripped ? "a second signal" : elapsed >= profile.drainTimeout ? "drain_timeout" : nil
        if let reason {
            let clients = DrainWait.busiest((try? counter.clients()) ?? [:])
            logger.warning(
                "on_stop: \(wait.unfinished(state: .drain, after: elapsed, because: "stopped waiting (\(reason))", clients: clients, staying: false))"
            )
            return
        }
        let pause = min(DrainWait.interval(afterCounting: monotonicSeconds() - t0), profile.drainTimeout - elapsed)
        try? await Task.sleep(nanoseconds: UInt64(max(0.01, pause) * 1e9))
    }
}
