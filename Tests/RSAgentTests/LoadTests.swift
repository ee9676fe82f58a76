import Foundation
import Netlink
import Testing

@testable import RSAgent

/// A sample whose only pressure is CPU at `cpu` percent, `t` seconds in.
func cpuSample(_ cpu: Double, at t: Double, services: [ServiceLoad] = []) -> LoadSample {
    LoadSample(
        time: t, cpu: cpu / 100, loadAverage: LoadAverage(one: 0, five: 0, fifteen: 0), cpus: 4,
        memory: MemoryInfo(totalBytes: 100, availableBytes: 100), services: services)
}

/// Runs `cpu` percentages one second apart through a policy; returns the published weights.
func weights(_ cpu: [Double], settings: LoadSettings = LoadSettings(), admin: AdminState = .ready) -> [Int] {
    var p = WeightPolicy(settings: settings)
    return cpu.enumerated().map { p.update(cpuSample($0.element, at: Double($0.offset)), admin: admin).weight }
}

/// Distinct consecutive values: how the weight moved.
func moves(_ w: [Int]) -> [Int] { w.reduce(into: []) { if $0.last != $1 { $0.append($1) } } }

@Suite struct WeightPolicyTests {
    @Test func idleIsFullWeightAndTheFirstSampleIsPublishedAtOnce() {
        #expect(weights([0]) == [100])
        #expect(weights([40]) == [60])
    }

    @Test func aStepInLoadMovesTheWeightOnceToWhereItSettles() {
        let w = weights(Array(repeating: 0, count: 5) + Array(repeating: 50, count: 30))
        // One move, to within the settling slack of the new level.
        #expect(moves(w).count == 2 && abs(moves(w)[1] - 50) <= 3, "weights: \(w)")
        // …and within a few time constants, not immediately (the first loaded sample is smoothed).
        let firstMove = w.firstIndex(of: moves(w)[1])!
        #expect(firstMove > 5 && firstMove <= 15, "weights: \(w)")
        // Back down again: one move back up.
        let back = weights(Array(repeating: 50, count: 5) + Array(repeating: 10, count: 30))
        #expect(moves(back).count == 2 && abs(moves(back)[1] - 90) <= 3, "weights: \(back)")
    }

    @Test func aSpikeOfOneOrTwoSamplesDoesNotMoveTheWeight() {
        #expect(moves(weights([20, 20, 20, 100, 20, 20, 20, 20, 20, 20, 20])) == [80])
        #expect(moves(weights([20, 20, 20, 100, 100, 20, 20, 20, 20, 20, 20, 20, 20])) == [80])
    }

    @Test func noiseAndOscillationAreDamped() {
        // ±8 points of noise around 50 % CPU: never a move after the first.
        let noise: [Double] = (0..<60).map { 50 + ($0 % 2 == 0 ? 8 : -8) }
        #expect(moves(weights(noise)).count == 1)
        // A fast 30/70 oscillation: at most one correction towards the middle in a minute.
        let swing: [Double] = (0..<60).map { $0 % 2 == 0 ? 30 : 70 }
        let m = moves(weights(swing))
        #expect(m.count <= 2, "moves: \(m)")
        #expect(abs(m.last! - 50) <= 12, "settles near the middle: \(m)")
    }

    @Test func aLongRampIsPublishedWithinMaxHold() {
        // 3 points a second for 30 s never "settles"; the weight still follows, at most every
        // maxHold seconds.
        let ramp = (0..<30).map { Double($0) * 3 }
        let w = weights(ramp)
        #expect(w.last! < 40, "weights: \(w)")
        #expect(moves(w).count <= 5)
    }

    @Test func clampsApplyToTheReportedWeight() {
        var s = LoadSettings()
        s.weightMin = 5
        s.weightMax = 60
        #expect(weights([0], settings: s) == [60])
        #expect(weights([99.9], settings: s) == [5])
        s.weightMin = 0
        #expect(weights([100], settings: s) == [0])
    }

    @Test func drainAndMaintReportZeroAtOnce() {
        #expect(weights([0, 0], admin: .drain) == [0, 0])
        #expect(weights([0], admin: .maint) == [0])
        var p = WeightPolicy(settings: LoadSettings())
        _ = p.update(cpuSample(30, at: 0), admin: .ready)
        #expect(p.weight(admin: .drain) == 0)
        #expect(p.weight(admin: .ready) == 70)
    }

    @Test func theMostConstrainedMetricWins() {
        var t = LoadThresholds()
        t.connections = 200
        t.load = 1
        let busy = LoadSample(
            time: 0, cpu: 0.1, loadAverage: LoadAverage(one: 2, five: 0, fifteen: 0), cpus: 4,
            memory: MemoryInfo(totalBytes: 1000, availableBytes: 700),
            services: [
                ServiceLoad(vip: IPAddress("192.0.2.1")!, service: ServicePort(proto: .tcp, port: 80), established: 150)
            ])
        let c = capacities(of: busy, thresholds: t)
        #expect(c[.cpu] == 90)
        #expect(c[.load] == 50)
        #expect(abs(c[.memory]! - 70) < 1e-9)
        #expect(c[.connections] == 25)
        var s = LoadSettings()
        s.thresholds = t
        var p = WeightPolicy(settings: s)
        let d = p.update(busy, admin: .ready)
        #expect(d.limitedBy == .connections)
        #expect(d.weight == 25)
    }

    @Test func aCPUThresholdBelowFullMeansFullEarlier() {
        var s = LoadSettings()
        s.thresholds.cpu = 80
        s.weightMin = 0
        #expect(weights([40], settings: s) == [50])
        #expect(weights([90], settings: s) == [0])
    }
}

@Suite struct ProcParsingTests {
    @Test func procStat() {
        let text = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n"
        let t = CPUTimes.parse(procStat: text[...])!
        #expect(t.total == 1000)
        #expect(t.busy == 160)
        let later = CPUTimes(busy: 260, total: 1200)
        #expect(CPUTimes.utilisation(from: t, to: later) == 0.5)
        #expect(CPUTimes.utilisation(from: t, to: t) == nil)
        #expect(CPUTimes.parse(procStat: "intr 1 2 3\n"[...]) == nil)
    }

    @Test func loadAverageAndMemory() {
        #expect(LoadAverage.parse("0.50 1.00 2.25 3/456 7890\n"[...]) == LoadAverage(one: 0.5, five: 1, fifteen: 2.25))
        #expect(LoadAverage.parse("garbage"[...]) == nil)
        let m = MemoryInfo.parse("MemTotal:        1000 kB\nMemFree:  10 kB\nMemAvailable:     250 kB\n"[...])!
        #expect(m == MemoryInfo(totalBytes: 1_024_000, availableBytes: 256_000))
        #expect(m.usedRatio == 0.75)
        #expect(MemoryInfo.parse("MemTotal: 1000 kB\n"[...]) == nil)
    }
}

/// A reconciler's verdict: converged (nil) or not (the reason); held down or not.
func health(_ notConverged: String? = nil, held: Bool = false) -> HealthSnapshot {
    var h = HealthSnapshot()
    h.notConverged = notConverged
    h.held = held
    return h
}

func sampleReport(admin: AdminState = .ready, held: Bool = false) -> LoadReport {
    var p = WeightPolicy(settings: LoadSettings())
    let s = cpuSample(
        25, at: 1_795_000_000,
        services: [
            ServiceLoad(vip: IPAddress("192.0.2.100")!, service: ServicePort(proto: .tcp, port: 80), established: 7)
        ])
    let d = p.update(s, admin: admin)
    return LoadReport(host: "rs1", rip: "10.0.0.21", admin: admin, sample: s, decision: d, interval: 1)
        .serving(health(held: held))
}

@Suite struct LoadReportTests {
    @Test func agentCheckLines() {
        #expect(sampleReport().agentCheckLine == "ready up 75%\n")
        #expect(sampleReport(admin: .drain).agentCheckLine == "drain\n")
        #expect(sampleReport(admin: .maint).agentCheckLine == "maint\n")
        #expect(sampleReport(held: true).agentCheckLine == "down #held down by `rsagent down`\n")
        #expect(sampleReport().with(admin: .drain, weight: 0).agentCheckLine == "drain\n")
        #expect(sampleReport(admin: .drain).with(admin: .ready, weight: 75).agentCheckLine == "ready up 75%\n")
    }

    @Test func agentLinesReadBack() {
        #expect(AgentReading.parse(agentLine: "ready up 75%\n") == .ready(75))
        #expect(AgentReading.parse(agentLine: "75%") == .ready(75))
        #expect(AgentReading.parse(agentLine: "up,ready\t20%") == .ready(20))
        #expect(AgentReading.parse(agentLine: "drain") == .drain)
        #expect(AgentReading.parse(agentLine: "maint") == .maint)
        #expect(AgentReading.parse(agentLine: "down #no reason") == .down("no reason"))
        #expect(AgentReading.parse(agentLine: "down") == .down(nil))
        // The description is free text: its words are not states.
        #expect(
            AgentReading.parse(agentLine: "down #drain the pool, maint at 5%") == .down("drain the pool, maint at 5%"))
        #expect(AgentReading.parse(agentLine: "ready up 50% #maint") == .ready(50))
        #expect(AgentReading.parse(agentLine: "hello") == nil)
    }

    @Test func keepalivedExitCodes() {
        #expect(AgentReading.ready(75).keepalivedExitCode(max: 100) == 77)
        #expect(AgentReading.ready(75).keepalivedExitCode(max: 253) == 192)
        #expect(AgentReading.ready(100).keepalivedExitCode(max: 253) == 255)
        #expect(AgentReading.drain.keepalivedExitCode(max: 100) == 2)
        #expect(AgentReading.maint.keepalivedExitCode(max: 100) == 1)
        #expect(AgentReading.down(nil).keepalivedExitCode(max: 100) == 1)
    }

    @Test func httpAnswersReadBack() throws {
        let json = try String(decoding: JSONEncoder().encode(sampleReport(admin: .drain)), as: UTF8.self)
        #expect(AgentReading.parse(httpResponse: "HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n\(json)") == .drain)
        #expect(AgentReading.parse(httpResponse: "HTTP/1.1 200 OK\r\n\r\n42\n") == .ready(42))
        #expect(AgentReading.parse(httpResponse: "HTTP/1.1 404 Not Found\r\n\r\nnope") == nil)
    }

    @Test func jsonUsesSnakeCaseAndCarriesEveryMetric() throws {
        let data = try JSONEncoder().encode(sampleReport())
        let o = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(o["weight"] as? Int == 75)
        #expect(o["admin_state"] as? String == "ready")
        #expect(o["rip"] as? String == "10.0.0.21")
        #expect(o["limited_by"] as? String == "cpu")
        #expect(o["sampled_at"] as? String == "2026-11-18T11:06:40Z")
        let m = try #require(o["metrics"] as? [String: Any])
        for key in [
            "cpu_utilisation", "load1", "load5", "load15", "cpus", "load1_per_cpu", "memory_total_bytes",
            "memory_available_bytes", "services", "sample_duration_seconds",
        ] {
            #expect(m[key] != nil, "missing \(key)")
        }
        let back = try JSONDecoder().decode(LoadReport.self, from: data)
        #expect(back == sampleReport())
    }

    @Test func prometheusTextIsWellFormed() {
        var c = ListenerCounters()
        c.served["http"] = 3
        c.refused["http"] = 1
        var h = health()
        h.vips = [.init(vip: IPAddress("192.0.2.100")!, device: "lo", present: true)]
        h.facing = [.init(interface: "eth0", arpIgnore: 1, arpAnnounce: 2, rpFilter: 2)]
        h.repairs["address"] = 3
        h.lastReload = (false, 1_795_000_000)
        let text = prometheusText(sampleReport(), counters: c, health: h)
        #expect(text.contains("rsagent_converged 1\n"))
        #expect(text.contains("rsagent_vip_present{vip=\"192.0.2.100\",device=\"lo\"} 1\n"))
        #expect(text.contains("rsagent_repairs_total{what=\"address\"} 3\n"))
        #expect(text.contains("rsagent_repairs_total{what=\"sysctl\"} 0\n"))
        #expect(text.contains("rsagent_reload_success 0\n"))
        #expect(text.contains("rsagent_reload_timestamp_seconds 1795000000\n"))
        #expect(text.contains("rsagent_interface_arp_ignore{interface=\"eth0\"} 1\n"))
        #expect(text.contains("rsagent_interface_rp_filter{interface=\"eth0\"} 2\n"))
        #expect(text.contains("rsagent_conflicts 0\n"))
        #expect(text.contains("rsagent_weight 75\n"))
        #expect(text.contains("rsagent_service_established_connections{vip=\"192.0.2.100\",service=\"tcp/80\"} 7\n"))
        #expect(text.contains("rsagent_listener_refused_connections_total{listener=\"http\"} 1\n"))
        #expect(text.contains("rsagent_admin_state{state=\"ready\"} 1\n"))
        // Every sample belongs to a family announced just before with HELP and TYPE; counters end in _total.
        var family = "", type = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                family = String(line.split(separator: " ")[2])
                #expect(family.hasPrefix("rsagent_"))
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                #expect(String(parts[2]) == family)
                type = String(parts[3])
                #expect(type == "gauge" || type == "counter")
                #expect((type == "counter") == family.hasSuffix("_total"))
            } else {
                let name = line.prefix { $0 != "{" && $0 != " " }
                #expect(String(name) == family, "sample \(line) outside its family")
                #expect(Double(line.split(separator: " ").last!) != nil)
            }
        }
        #expect(escapeLabel("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
    }

    @Test func httpRouting() {
        let r = sampleReport()
        let now = r.sampleTime + 1
        func get(_ uri: String, _ method: String = "GET") -> HTTPAnswer {
            loadHTTPResponse(
                method: method, uri: uri, report: r, counters: ListenerCounters(), health: health(), now: now)
        }
        #expect(get("/weight").body == "75\n")
        #expect(get("/weight?x=1").status == 200)
        #expect(get("/load").contentType == "application/json")
        #expect(get("/metrics").contentType.hasPrefix("text/plain; version=0.0.4"))
        #expect(get("/healthz").status == 200)
        #expect(get("/nope").status == 404)
        #expect(get("/weight", "POST").status == 405)
        #expect(get("/weight", "POST").headers.first?.1 == "GET, HEAD")
        #expect(get("/load", "DELETE").status == 405)
        #expect(get("/weight", "HEAD").status == 200)
        let stale = loadHTTPResponse(
            method: "GET", uri: "/healthz", report: r, counters: ListenerCounters(), health: health(),
            now: r.sampleTime + 60)
        #expect(stale.status == 503)
        #expect(
            loadHTTPResponse(
                method: "GET", uri: "/weight", report: nil, counters: ListenerCounters(), health: health(), now: 0
            ).status == 503)
    }

    /// DESIGN: directors never see a healthy agent that is not converged. Each protocol says
    /// so — agent-check `down #reason`, weight 0, /healthz 503 with the reason, /load state and
    /// reason, /metrics — and the admin state cannot mask it; converged again, all is back.
    @Test func notConvergedIsOutOfServiceOnEveryProtocol() throws {
        let why = "conflict: VIP 192.0.2.100 is also on eth0"
        let h = health(why)
        let r = sampleReport().serving(h)
        #expect(r.agentCheckLine == "down #\(why)\n")
        #expect(r.weight == 0)
        #expect(r.state == .down && r.converged == false && r.reason == why)
        #expect(sampleReport(admin: .drain).serving(h).agentCheckLine == "down #\(why)\n")
        let now = r.sampleTime + 1
        func get(_ uri: String) -> HTTPAnswer {
            loadHTTPResponse(method: "GET", uri: uri, report: r, counters: ListenerCounters(), health: h, now: now)
        }
        #expect(get("/healthz").status == 503)
        #expect(get("/healthz").body == "down: \(why)\n")
        #expect(get("/weight").body == "0\n")
        #expect(get("/metrics").body.contains("rsagent_converged 0\n"))
        #expect(get("/metrics").body.contains("rsagent_up 0\n"))
        let load = try #require(
            try JSONSerialization.jsonObject(with: Data(get("/load").body.utf8)) as? [String: Any])
        #expect(load["state"] as? String == "down" && load["converged"] as? Bool == false)
        #expect(load["reason"] as? String == why && load["weight"] as? Int == 0)
        // What `rsagent weight` makes of it: down, with the reason (keepalived: exit 1).
        let http = "HTTP/1.1 200 OK\r\n\r\n" + get("/load").body
        #expect(AgentReading.parse(httpResponse: http) == .down(why))
        #expect(AgentReading.parse(agentLine: r.agentCheckLine) == .down(why))
        #expect(AgentReading.down(why).keepalivedExitCode(max: 100) == 1)
        // Before the first pass the daemon is "starting": out of service too.
        #expect(sampleReport().serving(HealthSnapshot()).state == .down)
        // Through the board, as the listeners read it: the verdict applies at once, and the
        // policy's weight is back as soon as the host matches again.
        let shared = DaemonHealth()
        let board = LoadBoard(settings: LoadSettings(), admin: .ready, health: shared)
        board.record(cpuSample(25, at: 1), settings: LoadSettings(), host: "rs1", rip: nil)
        #expect(board.report?.agentCheckLine.hasPrefix("down #starting") == true)
        shared.update { $0.notConverged = nil }
        #expect(board.report?.agentCheckLine == "ready up 75%\n")
        shared.update { $0.notConverged = why }
        #expect(board.report?.weight == 0)
        shared.update { $0.notConverged = nil }
        #expect(board.report?.weight == 75)
        // A long reason stays one agent-check line of bounded length.
        let long = sampleReport().serving(health(String(repeating: "x", count: 500) + "\nmore"))
        #expect(long.agentCheckLine.utf8.count <= 7 + 200 + 1 && long.agentCheckLine.filter(\.isNewline).count == 1)
    }

    @Test func primaryAddressIsTheFacingInterfacesOwnAddress() {
        let host = sampleHost(extra: [owned("192.0.2.100")])
        let p = profile("mode: dr\nvips: [192.0.2.100]\n")
        #expect(primaryAddress(in: host, profile: p) == IPAddress("10.0.0.5"))
    }
}

@Suite struct WorkedExampleTests {
    /// The worked example in docs/directors.md, number for number.
    @Test func readmeWorkedExample() {
        let busy = LoadSample(
            time: 1, cpu: 0.3, loadAverage: LoadAverage(one: 2.4, five: 0, fifteen: 0), cpus: 4,
            memory: MemoryInfo(totalBytes: 1000, availableBytes: 600))
        let caps = capacities(of: busy, thresholds: LoadThresholds())
        #expect(caps[.cpu] == 70 && abs(caps[.load]! - 70) < 1e-9 && abs(caps[.memory]! - 60) < 1e-9)
        var p = WeightPolicy(settings: LoadSettings())
        _ = p.update(cpuSample(0, at: 0), admin: .ready)
        var smoothed: [Double] = [], published: [Int] = []
        for t in 1...8 {
            var s = busy
            s.time = Double(t)
            let d = p.update(s, admin: .ready)
            #expect(d.limitedBy == .memory)
            smoothed.append((d.smoothed * 10).rounded() / 10)
            published.append(d.weight)
        }
        #expect(smoothed == [84.3, 74.7, 68.9, 65.4, 63.3, 62.0, 61.2, 60.7])
        #expect(published == [100, 100, 100, 100, 100, 100, 61, 61])
    }
}

@Suite struct DescriptorLimitTests {
    /// Room for every listener full to its cap, on top of the daemon's own 64.
    @Test func descriptorsFollowTheListenersTheProfileEnables() {
        #expect(descriptorsNeeded(profile("mode: dr\nvips: [192.0.2.1]\n")) == 64)
        #expect(descriptorsNeeded(profile("mode: dr\nvips: [192.0.2.1]\nload: { http: 0.0.0.0:3334 }\n")) == 64 + 256)
        #expect(
            descriptorsNeeded(
                profile(
                    "mode: dr\nvips: [192.0.2.1]\nload: { http: 0.0.0.0:3334, agent_check: 0.0.0.0:3333 }\ntest_service: { port: 31337, http_port: 31380 }\n"
                )) == 64 + 2 * 256 + 2 * 1024)
        #expect(descriptorsNeeded(profile("mode: dr\nvips: [192.0.2.1]\ntest_service: { port: 31337 }\n")) == 64 + 1024)
    }
}
