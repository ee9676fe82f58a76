import Netlink
import YAML

#if canImport(Glibc)
    import Glibc
#endif

// `load:` and `test_service:`, and the ports they must not share.
extension ProfileDecoder {
    mutating func decodeLoad(_ n: Node) -> LoadSettings {
        var l = LoadSettings()
        let f = fields(n, LoadKey.self, context: "`load:`")
        if let v = f[.interval], let d = number(v, "load.interval", in: 0.1...60, unit: "seconds") { l.interval = d }
        if let v = f[.smoothing], let d = number(v, "load.smoothing", in: 0...600, unit: "seconds") { l.smoothing = d }
        if let v = f[.slowStart], let d = duration(v, "load.slow_start", in: 0...86400) { l.slowStart = d }
        if let v = f[.hysteresis], let d = number(v, "load.hysteresis", in: 0...50, unit: "points") {
            l.hysteresis = Int(d.rounded())
        }
        if let v = f[.thresholds] {
            let t = fields(v, ThresholdKey.self, context: "`load.thresholds:`")
            if let m = t[.cpu], let d = number(m, "load.thresholds.cpu", in: 1...100, unit: "percent") {
                l.thresholds.cpu = d
            }
            if let m = t[.load], let d = number(m, "load.thresholds.load", in: 0.01...1000, unit: "per CPU") {
                l.thresholds.load = d
            }
            if let m = t[.memory], let d = number(m, "load.thresholds.memory", in: 1...100, unit: "percent") {
                l.thresholds.memory = d
            }
            if let m = t[.connections], let i = int(m, "load.thresholds.connections") {
                if i >= 1 {
                    l.thresholds.connections = i
                } else {
                    problem(m, "load.thresholds.connections \(i) must be at least 1")
                }
            }
        }
        if let v = f[.http] { l.http = endpoint(v, "load.http") }
        if let v = f[.agentCheck] { l.agentCheck = endpoint(v, "load.agent_check") }
        if let v = f[.allow] {
            for item in list(v, "load.allow") {
                guard let s = string(item, "load.allow entry") else { continue }
                if let c = CIDR(s) {
                    l.allow.append(c)
                } else {
                    problem(item, "load.allow entry `\(s)` is not a network such as 192.0.2.0/24 or 2001:db8::/64")
                }
            }
        }
        if let v = f[.weight] {
            let w = fields(v, WeightKey.self, context: "`load.weight:`")
            if let m = w[.max], let i = int(m, "load.weight.max") {
                if (1...100).contains(i) {
                    l.weightMax = i
                } else {
                    problem(m, "load.weight.max \(i) must be 1–100 (percent of capacity)")
                }
            }
            if let m = w[.min], let i = int(m, "load.weight.min") {
                if (0...100).contains(i) { l.weightMin = i } else { problem(m, "load.weight.min \(i) must be 0–100") }
            }
            if l.weightMin > l.weightMax {
                problem(v, "load.weight.min \(l.weightMin) is above load.weight.max \(l.weightMax)")
            }
        }
        return l
    }

    mutating func decodeTestService(_ n: Node) -> TestServiceSettings {
        var t = TestServiceSettings()
        let f = fields(n, TestServiceKey.self, context: "`test_service:`")
        if let v = f[.port], let p = port(v, "test_service.port") { t.port = p }
        if let v = f[.httpPort], let p = port(v, "test_service.http_port") { t.httpPort = p }
        if let h = t.httpPort, h == t.port, let v = f[.httpPort] {
            problem(v, "test_service.http_port \(h) is the same as test_service.port; give HTTP its own port (31380)")
        }
        return t
    }

    mutating func checkPortClashes(load: LoadSettings?, test: TestServiceSettings?, node: Node) {
        var used: [Int: String] = [:]
        func claim(_ port: Int?, _ what: String) {
            guard let port else { return }
            if let other = used[port] {
                problem(node, "\(what) port \(port) is also used by \(other); every listener needs its own port")
            }
            used[port] = what
        }
        claim(load?.http?.port, "load.http")
        claim(load?.agentCheck?.port, "load.agent_check")
        claim(test?.port, "test_service.port")
        claim(test?.httpPort, "test_service.http_port")
    }
}
