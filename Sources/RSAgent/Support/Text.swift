#if canImport(Glibc)
    import Glibc
#endif

extension StringProtocol {
    /// The text without leading and trailing whitespace and newlines (what Foundation's
    /// `trimmingCharacters(in: .whitespacesAndNewlines)` does, without Foundation).
    public var trimmed: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }
}

/// `0.4567` as `45.7%`: one decimal, rounded half up (String(format:) without Foundation).
func percentText(_ share: Double) -> String {
    let tenths = Int((share * 1000).rounded())
    return "\(tenths / 10).\(tenths % 10)%"
}

/// `$TMPDIR` (with a final slash), else `/tmp/`.
public func temporaryDirectory() -> String {
    guard let t = getenv("TMPDIR").map({ String(cString: $0) }), !t.isEmpty else { return "/tmp/" }
    return t.hasSuffix("/") ? t : t + "/"
}

/// Writes `text` to `path` atomically (temporary file, fsync, rename).
public func writeTextFile(_ text: String, to path: String) throws {
    try writeAtomically(Array(text.utf8), to: path)
}

// Substring search and replacement, byte-wise over UTF-8. The standard library's
// `contains(_:)`, `firstRange(of:)` and `replacing(_:with:)` for strings come from its regex
// engine (_StringProcessing and _RegexParser, a megabyte of a static binary); the texts here
// (HTTP heads, sysctl paths, profile snippets) need no Unicode-aware matching.
extension StringProtocol {
    /// The UTF-8 offset range of the first occurrence of `other`, if any.
    func utf8Range(of other: some StringProtocol, from start: Int = 0) -> Range<Int>? {
        let hay = Array(utf8), needle = Array(other.utf8)
        guard !needle.isEmpty, needle.count <= hay.count else { return needle.isEmpty ? start..<start : nil }
        var i = start
        while i + needle.count <= hay.count {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) {
                return i..<(i + needle.count)
            }
            i += 1
        }
        return nil
    }

    /// Whether `other` occurs in the text.
    public func includes(_ other: some StringProtocol) -> Bool { utf8Range(of: other) != nil }

    /// The text after the first occurrence of `separator`, or nil when it does not occur.
    public func after(_ separator: some StringProtocol) -> String? {
        guard let r = utf8Range(of: separator) else { return nil }
        return String(decoding: Array(utf8)[r.upperBound...], as: UTF8.self)
    }

    /// Every occurrence of `target` replaced by `replacement`.
    public func replacingAll(_ target: some StringProtocol, with replacement: some StringProtocol) -> String {
        let bytes = Array(utf8), t = Array(target.utf8), r = Array(replacement.utf8)
        guard !t.isEmpty else { return String(self) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + t.count <= bytes.count && bytes[i..<(i + t.count)].elementsEqual(t) {
                out += r
                i += t.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
