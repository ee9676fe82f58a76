import Foundation
import RSAgent

/// The inputs a stranger or a typo controls, each a function that must return for any bytes:
///
/// - `profile`: the YAML profile decoder and validator;
/// - `http`: an HTTP request head through the parser, the load report's and the test
///   service's routing, and the serialized answer;
/// - `lines`: what comes off a socket into `rsagent weight`, `rsagent probe` and the admin
///   socket (agent-check lines, HTTP answers, test lines, admin commands).
enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = ["profile": profile, "http": http, "lines": lines]

    static func profile(_ data: [UInt8]) {
        _ = try? ProfileDecoder.decode(String(decoding: data, as: UTF8.self), file: "fuzz.yaml")
    }

    static let answer = TestAnswer(
        host: "rs1", rip: "10.0.0.1", local: "192.0.2.1:31337", client: "10.0.0.9:1", mode: "dr")

    static func http(_ data: [UInt8]) {
        var rest = data[...]
        // Pipelined heads, as the server walks them.
        while !rest.isEmpty {
            let parse = rest.withUnsafeBytes { HTTPRequestHead.parse($0) }
            guard case .request(let h) = parse else { return }
            precondition(h.length > 0 && h.length <= rest.count, "a head longer than its input")
            let a = loadHTTPResponse(
                method: h.method, uri: h.path, report: nil, counters: ListenerCounters(), health: HealthSnapshot(),
                now: 0)
            _ = a.serialized(keepAlive: h.keepAlive, head: h.method == "HEAD")
            _ = testHTTPResponse(method: h.method, uri: h.path, wantsJSON: h.wantsJSON, answer: answer)
                .serialized(keepAlive: h.keepAlive)
            rest = rest.dropFirst(h.length)
        }
    }

    static func lines(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if let r = AgentReading.parse(agentLine: text) {
            precondition((0...253).contains(r.weight(max: 253)))
            precondition((1...255).contains(r.keepalivedExitCode(max: 253)))
        }
        _ = AgentReading.parse(httpResponse: text)
        _ = parseTestReply(text)
        _ = AdminServer.command(data)
    }
}
