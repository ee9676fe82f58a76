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
        #expect(testHTTPResponse(method: "GET", uri: "/", wantsJSON: false, answer: answer).body == answer.line)
        #expect(
            testHTTPResponse(method: "GET", uri: "/?x", wantsJSON: false, answer: answer).contentType.hasPrefix(
                "text/plain"))
        let json = testHTTPResponse(method: "GET", uri: "/", wantsJSON: true, answer: answer)
        #expect(json.contentType == "application/json" && json.body == answer.json)
        #expect(testHTTPResponse(method: "POST", uri: "/", wantsJSON: false, answer: answer).status == 405)
        #expect(testHTTPResponse(method: "GET", uri: "/other", wantsJSON: false, answer: answer).status == 404)
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

@Suite struct HTTPRequestHeadTests {
    func parse(_ s: String) -> HTTPRequestHead.Parse {
        Array(s.utf8).withUnsafeBytes { HTTPRequestHead.parse($0) }
    }

    @Test func requestsParse() {
        guard case .request(let h) = parse("GET /weight?x=1 HTTP/1.1\r\nHost: a\r\nAccept: Application/JSON\r\n\r\nGET")
        else {
            Issue.record("not parsed")
            return
        }
        #expect(h.method == "GET" && h.path == "/weight" && h.keepAlive && h.wantsJSON && !h.hasBody)
        #expect(h.length == 63)
        guard case .request(let h10) = parse("HEAD / HTTP/1.0\r\n\r\n"),
            case .request(let ka) = parse("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n"),
            case .request(let close) = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
            case .request(let body) = parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        else {
            Issue.record("not parsed")
            return
        }
        #expect(!h10.keepAlive && h10.method == "HEAD")
        #expect(ka.keepAlive && !close.keepAlive)
        #expect(body.hasBody && !body.keepAlive && body.method == "POST")
    }

    @Test func badInputIsBounded() {
        #expect(parse("GET / HTTP/1.1\r\nHost: a\r\n") == .incomplete)
        #expect(parse("") == .incomplete)
        #expect(parse("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 20_000)) == .tooLarge)
        #expect(parse("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 20_000) + "\r\n\r\n") == .tooLarge)
        for bad in [
            "GET /\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "get / HTTP/1.1\r\n\r\n", " / HTTP/1.1\r\n\r\n",
            "GET  HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "\r\n\r\n",
        ] {
            #expect(parse(bad) == .malformed, "\(bad.debugDescription)")
        }
    }

    @Test func responsesSerialize() {
        let a = HTTPAnswer(
            status: 405, reason: "Method Not Allowed", contentType: "text/plain", body: "no\n",
            headers: [("Allow", "GET, HEAD")])
        #expect(
            String(decoding: a.serialized(keepAlive: true), as: UTF8.self)
                == "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nAllow: GET, HEAD\r\nConnection: keep-alive\r\n\r\nno\n"
        )
        #expect(
            String(decoding: a.serialized(keepAlive: false, head: true), as: UTF8.self).hasSuffix(
                "Connection: close\r\n\r\n"))
    }

    /// Two answers are equal only when every byte they would send is: the reason phrase too.
    @Test func answersDifferingOnlyInTheReasonAreNotEqual() {
        let a = HTTPAnswer.plain(503, "Service Unavailable", "down\n")
        var b = a
        #expect(a == b)
        b.reason = "Unavailable"
        #expect(a != b)
        b = a
        b.headers = [("Retry-After", "1")]
        #expect(a != b)
    }
}

@Suite struct AdminCommandTests {
    @Test func commands() {
        #expect(AdminServer.command(Array("drain\n".utf8)) == .set(.drain))
        #expect(AdminServer.command(Array("  ready \r\n".utf8)) == .set(.ready))
        #expect(AdminServer.command(Array("state".utf8)) == .query)
        #expect(AdminServer.command(Array("services\n".utf8)) == .services)
        #expect(AdminServer.command(Array("DRAIN".utf8)) == nil)
        #expect(AdminServer.command(Array("drain now".utf8)) == nil)
        #expect(AdminServer.command(Array(repeating: 32, count: 65)) == nil)
        #expect(AdminServer.command([0xff, 0xfe]) == nil)
    }
}
