import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a pure computation on its own thread while the caller does kernel I/O.
///
/// A `Thread` (not a Dispatch queue) on purpose: it is created by the calling thread and so
/// starts in that thread's network namespace — libdispatch workers may predate `--netns`.
/// Use it only for work that touches neither the network nor `/proc/sys/net` anyway.
public final class Background<Value: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<Value, any Error>?

    public init(_ work: @escaping @Sendable () throws -> Value) {
        startThread(name: "rsagent-decode", stackSize: 8 << 20) { [self] in
            result = Result { try work() }
            done.signal()
        }
    }

    /// Waits for the work and returns its value or rethrows its error.
    public func value() throws -> Value {
        done.wait()
        done.signal()  // let a second call return too
        return try result!.get()
    }
}
