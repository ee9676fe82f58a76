import Foundation
import Testing

@testable import RSAgent

struct DrainWaitTests {
    @Test func countsChangesAndDecidesWhenDrained() {
        var w = DrainWait(until: 0)
        var changed = w.update([("192.0.2.100:80", 3), ("192.0.2.100:443", 1)])
        #expect(changed)
        #expect(w.left == 4 && !w.drained && w.initial == 4)
        changed = w.update([("192.0.2.100:80", 3), ("192.0.2.100:443", 1)])
        #expect(!changed, "the same count is not a change")
        changed = w.update([("192.0.2.100:80", 1), ("192.0.2.100:443", 0)])
        #expect(changed)
        #expect(
            w.line(state: .drain, elapsed: 12.7) == "drain: 1 connection left (192.0.2.100:80 1) · 12s [#######---] 75%"
        )
        changed = w.update([("192.0.2.100:80", 0), ("192.0.2.100:443", 0)])
        #expect(changed && w.drained)
        #expect(w.line(state: .maint, elapsed: 20) == "maint: 0 connections left · 20s [##########] 100%")

        // --until: done at N or fewer; the bar runs from the first count down to N.
        var u = DrainWait(until: 2)
        _ = u.update([("[2001:db8::1]:443", 6)])
        #expect(u.bar() == "[----------] 0%")
        _ = u.update([("[2001:db8::1]:443", 4)])
        #expect(u.bar() == "[#####-----] 50%" && !u.drained)
        _ = u.update([("[2001:db8::1]:443", 2)])
        #expect(u.drained)
        #expect(u.line(state: .drain, elapsed: 1).contains("waiting for 2 or fewer"))
    }

    @Test func jsonLinesParse() throws {
        var w = DrainWait(until: 0)
        _ = w.update([("192.0.2.100:80", 2), ("[2001:db8::1]:443", 1)])
        let progress = w.json(time: 1_764_720_000.25)
        #expect(progress == #"{"t":1764720000.250,"connections":{"192.0.2.100:80":2,"[2001:db8::1]:443":1},"left":3}"#)
        let final = w.json(time: 1_764_720_002, final: 2.0004, clients: [("198.51.100.7", 2), ("2001:db8::7", 1)])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(final.utf8)) as? [String: Any])
        #expect(o["drained"] as? Bool == false)
        #expect(o["elapsed_s"] as? Double == 2.0)
        #expect((o["clients"] as? [String: Int]) == ["198.51.100.7": 2, "2001:db8::7": 1])
    }

    @Test func anUnfinishedWaitNamesServicesAndTheBusiestClients() {
        var w = DrainWait(until: 0)
        _ = w.update([("192.0.2.100:80", 3), ("192.0.2.100:443", 0)])
        let clients = DrainWait.busiest(["198.51.100.9": 1, "198.51.100.7": 2])
        #expect(clients.map(\.0) == ["198.51.100.7", "198.51.100.9"])
        #expect(
            w.unfinished(state: .drain, after: 30.2, because: "timed out", clients: clients)
                == "drain --wait: timed out after 30s with 3 connections left (192.0.2.100:80 3); clients: "
                + "198.51.100.7 2, 198.51.100.9 1; the admin state stays drain (`rsagent ready` undoes it)")
    }

    @Test func durationsAndPacing() {
        #expect(parseDuration("30") == 30)
        #expect(parseDuration("30s") == 30)
        #expect(parseDuration("500ms") == 0.5)
        #expect(parseDuration("5m") == 300)
        #expect(parseDuration("1h") == 3600)
        #expect(parseDuration("soon") == nil && parseDuration("-1") == nil && parseDuration("") == nil)
        // A quarter second while counting is cheap; stretched when it is not; never over 1 s.
        #expect(DrainWait.interval(afterCounting: 0.001) == 0.25)
        #expect(DrainWait.interval(afterCounting: 0.025) == 0.5)
        #expect(DrainWait.interval(afterCounting: 0.2) == 1)
    }
}
