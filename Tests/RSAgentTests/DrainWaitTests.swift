import Foundation
import Netlink
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

    /// A drain waits for the directors that poll the report to have read it twice (the second
    /// read proves the first one's weight is in force); occasional readers and vanished
    /// directors are not waited for.
    @Test func directorsThatPollAreWaitedFor() {
        var r = DirectorReads()
        #expect(r.pending(at: 0).isEmpty, "no drain yet")
        // 10.0.0.2 polls every 2 s; 10.0.0.3 every 5 s; an operator read once from 10.0.0.9; a
        // poller from 10.0.0.4 stopped a minute before the drain.
        for t in stride(from: 0.0, through: 100, by: 2) { r.read(by: IPAddress("10.0.0.2")!, at: t) }
        for t in stride(from: 0.0, through: 100, by: 5) { r.read(by: IPAddress("10.0.0.3")!, at: t) }
        r.read(by: IPAddress("10.0.0.9")!, at: 99)
        r.read(by: IPAddress("10.0.0.4")!, at: 30)
        r.read(by: IPAddress("10.0.0.4")!, at: 32)
        r.stateChanged(at: 101)
        #expect(r.pending(at: 101) == ["10.0.0.2", "10.0.0.3"])
        r.read(by: IPAddress("10.0.0.2")!, at: 102)
        #expect(r.pending(at: 103) == ["10.0.0.2", "10.0.0.3"], "read once: not yet proven applied")
        r.read(by: IPAddress("10.0.0.2")!, at: 104)
        #expect(r.pending(at: 104.5) == ["10.0.0.2", "10.0.0.3"], "read twice: a moment to act on the second")
        #expect(r.pending(at: 105) == ["10.0.0.3"])
        r.read(by: IPAddress("10.0.0.3")!, at: 105)
        r.read(by: IPAddress("10.0.0.3")!, at: 110)
        #expect(r.pending(at: 111).isEmpty, "both have read the drain twice")
        // A director that never reads again is given up after twice its interval (and a second).
        var gone = DirectorReads()
        gone.read(by: IPAddress("10.0.0.5")!, at: 0)
        gone.read(by: IPAddress("10.0.0.5")!, at: 3)
        gone.stateChanged(at: 4)
        #expect(gone.pending(at: 10.9) == ["10.0.0.5"])
        #expect(gone.pending(at: 11.1).isEmpty)
    }

    /// One address, several checkers (keepalived checks each virtual service on its own timer):
    /// their reads interleave, and the drain waits until every one of them has read it.
    @Test func aDirectorWithSeveralCheckersIsWaitedForUntilEachHasRead() {
        let director = IPAddress("10.0.0.2")!
        // Three checkers with a 2 s period, reading at 0, 0.1 and 0.7 s past each even second:
        // the longest gap is 1.3 s, but each checker comes round every 2 s.
        var r = DirectorReads()
        let phases = [0.0, 0.1, 0.7]
        for cycle in 0..<30 { for p in phases { r.read(by: director, at: Double(cycle) * 2 + p) } }
        r.stateChanged(at: 60.05)
        for t in [60.1, 60.7] { r.read(by: director, at: t) }
        #expect(r.pending(at: 61.9) == ["10.0.0.2"], "the checker at 0.0 has not read the drain yet")
        r.read(by: director, at: 62.0)
        #expect(r.pending(at: 62.5) == ["10.0.0.2"], "a moment for the last reader to act")
        #expect(r.pending(at: 63.2).isEmpty)
    }

    /// The period behind interleaved reads: one checker, several aligned or offset ones, and
    /// checkers with different periods and some jitter.
    @Test func periodsAreFoundFromHowReadsRecur() throws {
        func reads(_ checkers: [(period: Double, phase: Double)], until end: Double, jitter: Double = 0) -> [Double] {
            var out: [Double] = []
            for (i, c) in checkers.enumerated() {
                var t = c.phase
                var n = 0
                while t < end {
                    out.append(t)
                    n += 1
                    // A fixed pseudo-random jitter per read: the same every run.
                    t += c.period + jitter * sin(Double(n * 7 + i * 13))
                }
            }
            return out.sorted()
        }
        #expect(DirectorReads.period(of: []) == nil)
        #expect(DirectorReads.period(of: [5]) == nil)
        #expect(DirectorReads.period(of: [0, 3]) == 3, "two reads: their gap")
        let one = try #require(DirectorReads.period(of: reads([(2, 0)], until: 60)))
        #expect(abs(one - 2) < 0.01)
        let aligned = try #require(DirectorReads.period(of: reads([(2, 0), (2, 0.02), (2, 0.05)], until: 60)))
        #expect(abs(aligned - 2) < 0.1)
        let offset = try #require(DirectorReads.period(of: reads([(2, 0), (2, 0.1), (2, 0.7)], until: 60)))
        #expect(abs(offset - 2) < 0.1, "offset checkers: the gaps are 1.3 s at most, each comes round every 2 s")
        // Checkers staggered evenly look like one faster checker: no timing can tell them apart.
        let even = try #require(DirectorReads.period(of: reads([(2, 0), (2, 1)], until: 60)))
        #expect(abs(even - 1) < 0.1)
        let mixed = try #require(
            DirectorReads.period(of: reads([(1.5, 0), (2.5, 0.3)], until: 120, jitter: 0.1)))
        #expect(mixed >= 2.4, "the slower checker sets the period (found \(mixed))")
    }

    @Test func awaitedDirectorsKeepTheWaitGoing() {
        var w = DrainWait(until: 0)
        var changed = w.update([("192.0.2.100:80", 0)], directors: ["10.0.0.2"])
        #expect(changed)
        #expect(!w.drained, "no connections, but a director has not read drain yet")
        #expect(
            w.line(state: .drain, elapsed: 1)
                == "drain: 0 connections left · waiting for director 10.0.0.2 to read drain · 1s [##########] 100%")
        #expect(w.json(time: 5).hasSuffix(#""left":0,"directors":["10.0.0.2"]}"#))
        #expect(
            w.unfinished(state: .drain, after: 3, because: "timed out", clients: [])
                == "drain --wait: timed out after 3s with 0 connections left; directors yet to read drain: 10.0.0.2; "
                + "the admin state stays drain (`rsagent ready` undoes it)")
        changed = w.update([("192.0.2.100:80", 0)], directors: [])
        #expect(changed && w.drained)
    }
}
