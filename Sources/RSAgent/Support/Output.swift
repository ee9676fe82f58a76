#if canImport(Glibc)
    import Glibc
#endif

/// Aligned text tables for people.
public struct Table {
    var headers: [String]
    var rows: [[String]] = []
    public init(_ headers: String...) { self.headers = headers }
    public mutating func add(_ cells: String...) { rows.append(cells) }
    public mutating func add(_ cells: [String]) { rows.append(cells) }

    /// Cells are ASCII (addresses, device names, numbers), so widths are byte counts: counting
    /// Characters across a 10,000-row table costs more than the rest of `status`.
    public func render(indent: String = "  ") -> String {
        var widths = headers.map(\.utf8.count)
        for r in rows {
            for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.utf8.count) }
        }
        var out = ""
        out.reserveCapacity((rows.count + 1) * (widths.reduce(0, +) + 8))
        // Padding strings made once (slicing one long string walks Characters on every cell).
        let pads = (0...((widths.max() ?? 0) + 2)).map { String(repeating: " ", count: $0) }
        func line(_ cells: [String]) {
            out += indent
            for (i, c) in cells.enumerated() {
                out += c
                if i < cells.count - 1 { out += pads[max(0, widths[i] - c.utf8.count) + 2] }
            }
            while out.hasSuffix(" ") { out.removeLast() }
            out += "\n"
        }
        line(headers)
        for r in rows { line(r) }
        return out
    }
}

/// ANSI colour, only when stdout is a terminal and NO_COLOR is unset.
public enum Style {
    public static let enabled: Bool = isatty(1) == 1 && getenv("NO_COLOR") == nil
    public static func green(_ s: String) -> String { enabled ? "\u{1B}[32m\(s)\u{1B}[0m" : s }
    public static func red(_ s: String) -> String { enabled ? "\u{1B}[31m\(s)\u{1B}[0m" : s }
    public static func yellow(_ s: String) -> String { enabled ? "\u{1B}[33m\(s)\u{1B}[0m" : s }
    public static func bold(_ s: String) -> String { enabled ? "\u{1B}[1m\(s)\u{1B}[0m" : s }
}

/// One JSON document, keys sorted, for scripts. Report types spell their snake_case keys in
/// `CodingKeys` (the schema is then visible in code, and a key strategy would cost more than
/// the rest of encoding a 10,000-VIP report).
public func renderJSON<T: Encodable>(_ value: T) -> String {
    (try? JSON.encode(value, pretty: true)) ?? "{}"
}

/// What `apply`, `down`, `status` and `check` return: one JSON document for scripts, or text
/// for people (stdout) with its sentences for stderr, and the exit code.
public protocol CommandReport: Encodable {
    func renderText() -> String
    /// Conflicts, errors and warnings, one sentence each, for stderr (text output only).
    var messages: [String] { get }
    var exitCode: Int32 { get }
}

extension CommandReport {
    public var messages: [String] { [] }

    /// Prints the report as JSON or as text with its messages; the exit code to end with.
    public func emitted(json: Bool) -> Int32 {
        if json {
            emit(renderJSON(self))
        } else {
            emit(renderText())
            for m in messages { emitError(m) }
        }
        return exitCode
    }
}

/// Writes text to stdout in one call (10,000-line outputs stay fast).
public func emit(_ text: String) { writeAll(1, text) }

public func emitError(_ text: String) { writeAll(2, text) }

/// `write(2)` until done. A reader that went away (`rsagent status | head`) is not an error
/// worth a crash: the rest is dropped (FileHandle.write would trap on EPIPE).
private func writeAll(_ fd: Int32, _ text: String) {
    var t = text
    if !t.hasSuffix("\n") { t += "\n" }
    t.withUTF8 { buf in
        var off = 0
        while off < buf.count {
            let n = write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            off += n
        }
    }
}
