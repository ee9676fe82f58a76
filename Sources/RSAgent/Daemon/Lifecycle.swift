import Logging
import UnixSignals

/// One long-running part of the daemon: the reconciler, the load report's sampler and
/// listeners, the test service. `run` returns once the service has stopped; `shutdown` asks it
/// to stop, and may come before `run` has begun.
public protocol DaemonService: AnyObject, Sendable {
    func run() async throws
    func shutdown()
}

/// Runs `services` together until SIGTERM or SIGINT, or until one of them ends; then asks the
/// others to stop, newest first, and waits for all of them. An error from a service is
/// rethrown after the others have stopped.
///
/// `beforeStop` (`on_stop: drain`) runs first on a signal, with every service still running
/// (directors keep reading the agent); a second signal trips the latch it is given, which
/// ends its wait.
///
/// swift-service-lifecycle's `ServiceGroup` does this and more; it also brings
/// swift-async-algorithms, a megabyte of a static binary, for what here is one task group.
public func runServices(
    _ services: [any DaemonService], logger: Logger,
    beforeStop: (@Sendable (ShutdownLatch) async -> Void)? = nil
) async throws {
    enum Ended { case signal(UnixSignal), service(Int, (any Error)?), readyToStop }
    try await withThrowingTaskGroup(of: Ended.self) { group in
        func awaitSignal() {
            group.addTask {
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) { return .signal(signal) }
                return .signal(.sigterm)  // cancelled: the services are ending anyway
            }
        }
        for (i, s) in services.enumerated() {
            group.addTask {
                do { try await s.run() } catch { return .service(i, error) }
                return .service(i, nil)
            }
        }
        awaitSignal()
        var failure: (any Error)?
        var stopping = false
        var left = services.count
        let stopWaiting = ShutdownLatch()
        var preparing = false
        while left > 0, let ended = try await group.next() {
            switch ended {
            case .signal(let s):
                if preparing {
                    logger.notice("\(s) received again: stopping without waiting")
                    stopWaiting.trip()
                    continue
                }
                logger.notice("\(s) received: stopping")
                if let beforeStop, !stopping {
                    preparing = true
                    awaitSignal()
                    group.addTask {
                        await beforeStop(stopWaiting)
                        return .readyToStop
                    }
                    continue
                }
            case .service(_, let error):
                left -= 1
                if let error, failure == nil { failure = error }
            case .readyToStop:
                preparing = false
            }
            if !stopping {
                stopping = true
                for s in services.reversed() { s.shutdown() }
            }
        }
        group.cancelAll()
        if let failure { throw failure }
    }
}

/// A one-way latch a service waits on until `shutdown` trips it.
public final class ShutdownLatch: @unchecked Sendable {
    private let lock = Lock()
    private var tripped = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public var isTripped: Bool { lock.withLock { tripped } }

    public func trip() {
        let resume = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            tripped = true
            defer { waiters = [] }
            return waiters
        }
        for w in resume { w.resume() }
    }

    /// Returns once `trip` has been called (at once if it already was).
    public func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if tripped { return true }
                waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
}
