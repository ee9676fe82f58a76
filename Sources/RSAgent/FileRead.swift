#if canImport(Glibc)
    import Glibc
#endif

/// The whole of a file, read with `read(2)` until end of file; nil when it cannot be opened or
/// read. rsagent reads /proc this way rather than through Foundation, whose file reading leaks
/// its buffers (LeakSanitizer, swift-foundation in Swift 6.3) for files that report no size
/// (all of /proc) or grow while read (a child's log).
public func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return out }
        out += chunk[0..<n]
    }
}

/// `readFile` as UTF-8 text.
public func readTextFile(_ path: String) -> String? {
    readFile(path).map { String(decoding: $0, as: UTF8.self) }
}
