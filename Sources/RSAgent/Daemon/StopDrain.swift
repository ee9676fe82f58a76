import Logging

/// `on_stop: drain`, on the first SIGTERM: tell directors `drain` (weight 0; not persisted, so
/// the next start is in service as before), then wait until the directors have read it and no
/// connection to the VIP services is left, up to `drain_timeout` or until `stop` trips (a second
/// signal). Progress goes to the log and to systemd (`STATUS=`, what `systemctl status` shows).
/// The VIPs are removed after.
public func drainBeforeStop(
    profile: Profile, board: LoadBoard?, notifier: SystemdNotifier, logger: Logger, stop: ShutdownLatch
) async {
    board?.setAdmin(.drain)
    let watch: DrainWatch
    do {
        watch = try DrainWatch(services: ServiceConnections.services(of: profile), until: 0) {
            board?.pendingDirectors ?? []
        }
    } catch {
        logger.error("on_stop: drain: counting connections to the VIP services: \(error); removing the VIPs now")
        return
    }
    while true {
        let step: (changed: Bool, pause: Double)
        do { step = try watch.poll() } catch {
            logger.error("on_stop: drain: counting connections to the VIP services: \(error); removing the VIPs now")
            return
        }
        let elapsed = watch.elapsed
        if step.changed {
            let line = watch.wait.line(state: .drain, elapsed: elapsed)
            logger.notice("on_stop: \(line)")
            notifier.notify("STATUS=stopping: \(line)")
        }
        if watch.wait.drained {
            logger.notice("on_stop: drain: no connections left to the VIP services after \(Int(elapsed))s")
            return
        }
        let reason =
            stop.isTripped ? "a second signal" : elapsed >= profile.drainTimeout ? "drain_timeout" : nil
        if let reason {
            let text = watch.wait.unfinished(
                state: .drain, after: elapsed, because: "stopped waiting (\(reason))", clients: watch.busiestClients(),
                staying: false)
            logger.warning("on_stop: \(text)")
            return
        }
        let pause = min(step.pause, profile.drainTimeout - elapsed)
        try? await Task.sleep(nanoseconds: UInt64(max(0.01, pause) * 1e9))
    }
}
