#if canImport(Glibc)
    import Glibc
#endif

/// A mutual-exclusion lock over `pthread_mutex_t`: what Foundation's `NSLock` gave, without
/// linking Foundation (whose full module brings ICU's 30 MB data table into a static binary).
public final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Runs `body` on a new OS thread named `name` (what `ps -L` and `top -H` show; at most 15
/// bytes). A thread of its own, not a Dispatch worker: it is created by the calling thread, so
/// it starts in that thread's network namespace, and it may block in `poll(2)` for as long as
/// it likes.
public func startThread(name: String, stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    defer { pthread_attr_destroy(&attr) }
    if stackSize > 0 { pthread_attr_setstacksize(&attr, stackSize) }
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    let box = Unmanaged.passRetained(Box(String(name.utf8.prefix(15)) ?? "rsagent", body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, &attr,
        { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            // pthread_setname_np is not visible without _GNU_SOURCE; this is what it does.
            let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            if fd >= 0 {
                _ = box.name.withCString { write(fd, $0, strlen($0)) }
                close(fd)
            }
            box.body()
            return nil
        }, box)
    // Out of threads: the caller's work would never run, which no caller can recover from.
    precondition(rc == 0, "pthread_create failed with \(rc)")
}
