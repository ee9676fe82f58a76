import Foundation

/// Golden files: the JSON documents rsagent prints, stored under `Tests/Golden/NAME.json`, so a
/// change of a key, an order or a word is seen in review. `RSAGENT_GOLDEN_UPDATE=1` rewrites them.
public enum Golden {
    static let directory: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Golden")
    }()

    /// Compares `text` with the golden file NAME; nil when equal, else a message naming the
    /// first line that differs. The version is written as `$VERSION` (a release changes it).
    public static func compare(_ name: String, _ document: String) -> String? {
        let text = document.replacingOccurrences(
            of: #""version" : "[^"]*""#, with: #""version" : "$VERSION""#, options: .regularExpression)
        let url = directory.appendingPathComponent("\(name).json")
        if ProcessInfo.processInfo.environment["RSAGENT_GOLDEN_UPDATE"] == "1" {
            try? text.write(to: url, atomically: true, encoding: .utf8)
            return nil
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            return "\(name): no golden file \(url.path) (RSAGENT_GOLDEN_UPDATE=1 writes it)"
        }
        if expected == text { return nil }
        let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let b = text.split(separator: "\n", omittingEmptySubsequences: false)
        let i = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        let want = i < a.count ? String(a[i]) : "<end>"
        let got = i < b.count ? String(b[i]) : "<end>"
        return "\(name).json line \(i + 1): expected `\(want)`, got `\(got)`"
    }
}
