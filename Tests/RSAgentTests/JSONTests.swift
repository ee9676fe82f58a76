import Foundation
import Netlink
import Testing

@testable import RSAgent

/// rsagent's own JSON (no Foundation in the binary): the documents scripts read must be what
/// Foundation's encoder would say, and decoding must take what rsagent wrote.
@Suite struct JSONTests {
    struct Sample: Codable, Equatable {
        var name: String
        var count: Int
        var ratio: Double
        var whole: Double
        var flag: Bool
        var missing: String?
        var list: [Int]
        var empty: [String]
        var map: [String: Double]
        var nested: Nested
        var pid: Int32
        var big: UInt64
        struct Nested: Codable, Equatable { var text: String }
    }

    let sample = Sample(
        name: "lo:rs \"quoted\" /path\n\ttab é ✓", count: -3, ratio: 0.005, whole: 1, flag: true, missing: nil,
        list: [1, 2], empty: [], map: ["b": 2.5, "a": 1], nested: .init(text: "x"), pid: 4242,
        big: 25_276_203_008)

    @Test func encodesLikeFoundationAndReadsBack() throws {
        let ours = try JSON.encode(sample)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let theirs = String(decoding: try enc.encode(sample), as: UTF8.self)
        // The same document (Foundation writes 1.0 as 1 too), byte for byte on one line.
        #expect(ours == theirs, "\n\(ours)\n\(theirs)")
        #expect(!ours.contains("missing"))  // an absent optional is left out, as Foundation does
        #expect(try JSON.decode(Sample.self, from: ours) == sample)
        #expect(try JSONDecoder().decode(Sample.self, from: Data(ours.utf8)) == sample)
    }

    @Test func prettyPrintsWithSortedKeysAndTwoSpaces() throws {
        struct P: Codable { var b: [Int]; var a: String; var c: [String: Int] }
        let text = try JSON.encode(P(b: [1], a: "x", c: [:]), pretty: true)
        #expect(text == "{\n  \"a\" : \"x\",\n  \"b\" : [\n    1\n  ],\n  \"c\" : {}\n}")
    }

    @Test func theReportsScriptsReadRoundTrip() throws {
        let status = DaemonStatus(pid: 7, startedAt: "2026-12-03T10:00:00Z", profile: "/etc/rsagent/rsagent.yaml")
        #expect(try JSON.decode(DaemonStatus.self, from: try JSON.encode(status)) == status)
        var state = AgentState()
        state.sysctls["net.ipv4.conf.eth0.arp_ignore"] = .init(original: 0, written: 1)
        state.devices = ["lvs0"]
        #expect(try JSON.decode(AgentState.self, from: try JSON.encode(state, pretty: true)) == state)
        // Every key of /load as Foundation reads it.
        let load = try JSONSerialization.jsonObject(with: Data(try JSON.encode(sampleReport()).utf8)) as? [String: Any]
        #expect(load?["weight"] as? Int == 75 && load?["state"] as? String == "up")
    }

    @Test func malformedInputIsDataCorrupted() {
        for bad in ["{", "{\"a\" 1}", "[1,]", "tru", "\"open", "{} x", ""] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSON.decode([String: Int].self, from: bad) }
        }
        do {
            _ = try JSON.decode([String: Int].self, from: "{")
        } catch DecodingError.dataCorrupted {
        } catch {
            Issue.record("not dataCorrupted: \(error)")
        }
        // Wrong types are type mismatches, missing keys are keyNotFound.
        #expect(throws: DecodingError.self) { try JSON.decode([String: Int].self, from: "{\"a\": \"x\"}") }
        #expect(throws: DecodingError.self) { try JSON.decode(Sample.Nested.self, from: "{}") }
        #expect(throws: DecodingError.self) { try JSON.decode([Int8].self, from: "[300]") }
    }

    @Test func escapesAndUnicodeRoundTrip() throws {
        let s = "a\u{01}b\\c\"d😀"
        let text = try JSON.encode([s])
        #expect(text == "[\"a\\u0001b\\\\c\\\"d😀\"]")
        #expect(try JSON.decode([String].self, from: text) == [s])
        #expect(try JSON.decode([String].self, from: "[\"\\ud83d\\ude00 \\u00e9\"]") == ["😀 é"])
    }
}
