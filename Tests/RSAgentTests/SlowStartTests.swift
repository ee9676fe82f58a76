import Foundation
import Testing

@testable import RSAgent

struct SlowStartTests {
    @Test func rampsLinearlyFromTheMinimumToTheComputedWeight() {
        let s = SlowStart(window: 10, began: 100)
        #expect(s.weight(61, minimum: 1, at: 100) == 1)
        #expect(s.weight(61, minimum: 1, at: 102.5) == 16)
        #expect(s.weight(61, minimum: 1, at: 105) == 31)
        #expect(s.weight(61, minimum: 1, at: 110) == 61)
        #expect(s.weight(61, minimum: 1, at: 500) == 61)
        #expect(s.status(at: 104) == SlowStartStatus(remainingS: 6, factor: 0.4))
        // A computed weight at or below the minimum is never raised; off means no ramp.
        #expect(s.weight(1, minimum: 1, at: 101) == 1)
        #expect(SlowStart(window: 0, began: 100).weight(61, minimum: 1, at: 101) == 61)
        #expect(SlowStart(window: 0).status(at: 1) == nil)
    }

    @Test func aRestartInTheMiddleResumesAndAFinishedRampStartsAgain() {
        #expect(SlowStart.resuming(window: 60, persisted: 1000, at: 1030).began == 1000)
        #expect(SlowStart.resuming(window: 60, persisted: 1000, at: 1070).began == 1070)
        #expect(SlowStart.resuming(window: 60, persisted: nil, at: 5).began == 5)
        #expect(SlowStart.resuming(window: 60, persisted: 2000, at: 1000).began == 1000, "a clock set back")
    }

    @Test func theBoardRampsAfterReadyAndShowsIt() throws {
        var settings = LoadSettings()
        settings.slowStart = 10
        let health = DaemonHealth()
        health.update { $0.notConverged = nil }
        let dir = NSTemporaryDirectory() + "rsagent-slowstart-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Started in drain: no ramp yet; ready at t=100 begins one, kept in state_dir.
        let board = LoadBoard(settings: settings, admin: .drain, health: health, stateDir: dir, now: 90)
        board.record(cpuSample(25, at: 99), settings: settings, host: "rs1", rip: nil)
        #expect(board.report?.weight == 0)
        board.setAdmin(.ready, now: 100)
        #expect(board.report?.weight == 1)
        board.record(cpuSample(25, at: 105), settings: settings, host: "rs1", rip: nil)
        #expect(board.report?.weight == 38)
        #expect(board.report?.slowStart == SlowStartStatus(remainingS: 5, factor: 0.5))
        #expect(try String(contentsOfFile: dir + "/slow-start", encoding: .utf8).hasPrefix("100"))
        // A daemon restarted at t=107 resumes the ramp rather than starting it again.
        let restarted = LoadBoard(settings: settings, admin: .ready, health: health, stateDir: dir, now: 107)
        restarted.record(cpuSample(25, at: 108), settings: settings, host: "rs1", rip: nil)
        #expect(restarted.report?.weight == 60)
        restarted.record(cpuSample(25, at: 111), settings: settings, host: "rs1", rip: nil)
        #expect(restarted.report?.weight == 75)
        #expect(restarted.report?.slowStart == SlowStartStatus(remainingS: 0, factor: 1))
        let metrics = prometheusText(restarted.report!, counters: ListenerCounters(), health: HealthSnapshot())
        #expect(metrics.contains("rsagent_slow_start_factor 1\n"))
    }

    @Test func theProfileTakesADuration() throws {
        let p = try ProfileDecoder.decode(
            "mode: dr\nvips: [192.0.2.100]\nload: { http: 127.0.0.1:3334, slow_start: 90s }\n", file: "p.yaml")
        #expect(p.load?.slowStart == 90)
        #expect(p.drainTimeout == 300 && p.onStop == .keep)
        let drain = try ProfileDecoder.decode(
            "mode: dr\nvips: [192.0.2.100]\non_stop: drain\ndrain_timeout: 2m\n", file: "p.yaml")
        #expect(drain.onStop == .drain && drain.drainTimeout == 120)
        #expect(throws: (any Error).self) {
            try ProfileDecoder.decode(
                "mode: dr\nvips: [192.0.2.100]\nload: { http: 127.0.0.1:3334, slow_start: soon }\n", file: "p.yaml")
        }
    }
}
