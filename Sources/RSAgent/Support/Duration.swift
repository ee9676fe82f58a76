/// A duration as operators type it: `30` or `30s`, `500ms`, `5m`, `1h`; nil if it is not one.
public func parseDuration(_ text: String) -> Double? {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        guard let n = Double(text.dropLast(suffix.count)), n >= 0, n.isFinite else { return nil }
        return n * scale
    }
    guard let n = Double(text), n >= 0, n.isFinite else { return nil }
    return n
}
