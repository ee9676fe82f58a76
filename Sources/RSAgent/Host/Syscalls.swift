#if canImport(Glibc)
    import Glibc
#endif

// The system calls rsagent makes outside netlink, each written once: the error that carries the
// system's words, namespace switches, and the small /proc files it reads and writes.

/// A failure outside netlink (sysctl files, namespaces, sockets, the state file), with the
/// system's words.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32
    public var reason: String
    public var description: String { "\(operation): \(reason)" }
    public init(operation: String, errno: Int32 = 0, reason: String) {
        self.operation = operation; self.errno = errno; self.reason = reason
    }

    /// `code` in the system's words (`strerror`), then `fix` when there is one.
    public init(operation: String, code: Int32, fix: String? = nil) {
        let words = systemMessage(code)
        self.init(operation: operation, errno: code, reason: fix.map { "\(words); \($0)" } ?? words)
    }

    /// The calling thread's `errno` now: call it right after the failed system call.
    public static func current(_ operation: String, fix: String? = nil) -> SystemError {
        SystemError(operation: operation, code: Glibc.errno, fix: fix)
    }
}

/// The system's words for an errno value, as `strerror(3)` gives them.
public func systemMessage(_ code: Int32) -> String { String(cString: strerror(code)) }

/// Namespaces of one kind, switched for the calling thread only (`setns(2)`, `unshare(2)`).
enum ThreadNamespace {
    static let network: Int32 = 0x4000_0000  // CLONE_NEWNET
    static let hostname: Int32 = 0x0400_0000  // CLONE_NEWUTS

    /// Moves the calling thread into the namespace open at `fd`; false with errno set.
    static func enter(_ fd: Int32, _ kind: Int32) -> Bool { c_setns(fd, kind) == 0 }
    /// Gives the calling thread a new namespace of `kind`; false with errno set.
    static func unshareNew(_ kind: Int32) -> Bool { c_unshare(kind) == 0 }
    /// The calling thread's current namespace of `kind`, opened to come back to later.
    static func openCurrent(_ kind: Int32) -> Int32 {
        open(kind == network ? "/proc/thread-self/ns/net" : "/proc/thread-self/ns/uts", O_RDONLY | O_CLOEXEC)
    }
}

// glibc declares setns(2) and unshare(2) only under _GNU_SOURCE, which Swift's Glibc module
// does not define.
@_silgen_name("setns") private func c_setns(_ fd: Int32, _ nstype: Int32) -> Int32
@_silgen_name("unshare") private func c_unshare(_ flags: Int32) -> Int32

/// A small file's text (a /proc/sys value): nil when it does not exist; other failures throw
/// with the system's words.
func readSmallFile(_ path: String, operation: String) throws -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        if errno == ENOENT { return nil }
        throw SystemError.current(operation)
    }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 64)
    let n = read(fd, &buf, buf.count)
    if n < 0 { throw SystemError.current(operation) }
    return String(decoding: buf[0..<n], as: UTF8.self)
}

/// Writes `text` to a file that must exist (a /proc/sys value) in one `write(2)`, as
/// `sysctl -w` does; failures throw with the system's words.
func writeExistingFile(_ path: String, _ text: String, operation: String) throws {
    let fd = open(path, O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError.current(operation) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count else { throw SystemError.current(operation) }
}
