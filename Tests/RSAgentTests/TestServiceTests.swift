import Foundation
import Testing

@testable import RSAgent

@Suite struct TestServiceTests {
    let answer = TestAnswer(
        host: "rs1", rip: "10.0.0.11", local: "192.0.2.100:31337", client: "198.51.100.7:40312", mode: "dr")

    @Test func lineIsExactlyTheDesignsFormat() {
        #expect(
            answer.line
                == "rsagent test: host=rs1 rip=10.0.0.11 local=192.0.2.100:31337 client=198.51.100.7:40312 mode=dr\n")
        #expect(TestAnswer(line: answer.line) == answer)
        #expect(TestAnswer(line: "hello world") == nil)
        #expect(TestAnswer(line: "rsagent test: rip=1.2.3.4") == nil, "host and local are required")
    }

    @Test func jsonRoundTrips() throws {
        #expect(
            answer.json
                == #"{"client":"198.51.100.7:40312","host":"rs1","local":"192.0.2.100:31337","mode":"dr","rip":"10.0.0.11"}"#
                + "\n")
        #expect(TestAnswer(json: answer.json) == answer)
    }

    @Test func endpointsPrintLikeTheyAreTyped() {
        #expect(endpointText(ip: "192.0.2.100", port: 31337) == "192.0.2.100:31337")
        #expect(endpointText(ip: "::ffff:192.0.2.100", port: 31337) == "192.0.2.100:31337")
        #expect(endpointText(ip: "2001:db8::100", port: 80) == "[2001:db8::100]:80")
    }

    @Test func httpAnswers() {
        #expect(testHTTPResponse(method: "GET", uri: "/", accept: nil, answer: answer).body == answer.line)
        #expect(
            testHTTPResponse(method: "GET", uri: "/?x", accept: "*/*", answer: answer).contentType.hasPrefix(
                "text/plain"))
        let json = testHTTPResponse(method: "GET", uri: "/", accept: "application/json, */*", answer: answer)
        #expect(json.contentType == "application/json" && json.body == answer.json)
        #expect(testHTTPResponse(method: "POST", uri: "/", accept: nil, answer: answer).status == 405)
        #expect(testHTTPResponse(method: "GET", uri: "/other", accept: nil, answer: answer).status == 404)
    }

    @Test func probeRepliesParse() {
        #expect(parseTestReply(answer.line) == answer)
        #expect(parseTestReply("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + answer.line) == answer)
        #expect(parseTestReply("HTTP/1.1 200 OK\r\n\r\n" + answer.json) == answer)
        #expect(parseTestReply("HTTP/1.1 404 Not Found\r\n\r\nnope") == nil)
        #expect(parseTestReply("SSH-2.0-OpenSSH_9.2\r\n") == nil)
    }

    @Test func probeTabulates() {
        var rs2 = answer
        rs2.host = "rs2"
        rs2.rip = "10.0.0.12"
        let answers = [answer, rs2, rs2, answer, rs2]
        let r = ProbeResult(target: "192.0.2.100:31337", attempts: 6, answers: answers, failures: ["timeout"])
        #expect(r.answered == 5 && r.failed == 1 && r.errors == ["timeout"])
        #expect(r.realservers.map(\.host) == ["rs2", "rs1"])
        #expect(r.realservers.map(\.answers) == [3, 2])
        #expect(r.realservers.map(\.share) == [0.6, 0.4])
        #expect(r.realservers[0].reached == ["192.0.2.100:31337"] && r.realservers[0].modes == ["dr"])
        #expect(r.rendered.contains("rs2         10.0.0.12  3        60.0%  192.0.2.100:31337  dr"), "\(r.rendered)")
        let none = ProbeResult(target: "x:1", attempts: 2, answers: [], failures: ["refused", "refused"])
        #expect(none.realservers.isEmpty && none.errors == ["refused"])
    }
}
