#if canImport(Glibc)
    import Glibc
#endif

/// What `rsagent probe` found: which realservers answered, how often, through which address.
public struct ProbeResult: Sendable, Codable, Equatable {
    public var schema = "rsagent.probe/1"
    public var target: String
    public var attempts: Int
    public var answered: Int
    public var failed: Int
    /// Most answers first.
    public var realservers: [Realserver]
    /// Distinct failure sentences, at most five.
    public var errors: [String]

    public struct Realserver: Sendable, Codable, Equatable {
        public var host: String
        public var rip: String
        public var answers: Int
        /// Share of the answers, 0…1.
        public var share: Double
        /// The addresses the client's connections reached (`local=`): the VIP through a director.
        public var reached: [String]
        public var modes: [String]
    }

    /// Groups answers by realserver (host and RIP).
    public init(target: String, attempts: Int, answers: [TestAnswer], failures: [String]) {
        self.target = target
        self.attempts = attempts
        answered = answers.count
        failed = failures.count
        var order: [String] = []
        var rows: [String: Realserver] = [:]
        for a in answers {
            let key = a.host + "\u{0}" + a.rip
            if rows[key] == nil {
                order.append(key)
                rows[key] = Realserver(host: a.host, rip: a.rip, answers: 0, share: 0, reached: [], modes: [])
            }
            rows[key]!.answers += 1
            if !rows[key]!.reached.contains(a.local) { rows[key]!.reached.append(a.local) }
            if !rows[key]!.modes.contains(a.mode) { rows[key]!.modes.append(a.mode) }
        }
        realservers = order.map { k in
            var r = rows[k]!
            r.share = answers.isEmpty ? 0 : (Double(r.answers) / Double(answers.count) * 1000).rounded() / 1000
            return r
        }.sorted { $0.answers > $1.answers || ($0.answers == $1.answers && $0.host < $1.host) }
        var distinct: [String] = []
        for f in failures where !distinct.contains(f) && distinct.count < 5 { distinct.append(f) }
        errors = distinct
    }

    /// The human table.
    public var rendered: String {
        var out = "\(target): \(attempts) connection(s), \(answered) answered"
        out += realservers.isEmpty ? "" : " by \(realservers.count) realserver(s)"
        out += failed > 0 ? ", \(failed) failed\n" : "\n"
        if !realservers.isEmpty {
            var t = Table("REALSERVER", "RIP", "ANSWERS", "SHARE", "REACHED", "MODE")
            for r in realservers {
                t.add(
                    r.host, r.rip, String(r.answers), percentText(r.share),
                    r.reached.joined(separator: ","), r.modes.joined(separator: ","))
            }
            out += t.render()
        }
        for e in errors { out += "  error: \(e)\n" }
        return out
    }

    enum CodingKeys: String, CodingKey { case schema, target, attempts, answered, failed, realservers, errors }
}

/// Reads one test-service answer out of what a server sent: the plain line, or an HTTP
/// response whose body is the line or its JSON form.
public func parseTestReply(_ text: String) -> TestAnswer? {
    guard text.hasPrefix("HTTP/") else { return TestAnswer(line: text) }
    guard let body = text.after("\r\n\r\n") else { return nil }
    return TestAnswer(line: body) ?? TestAnswer(json: body)
}

/// Connects `count` times to a test service (each connection from a new source port, so a
/// director or an ECMP router may pick another realserver each time) and tabulates who answered.
/// The plain port speaks first; when it does not within 250 ms the port is taken for the HTTP
/// one and every connection asks `GET /`.
public func probe(host: String, port: Int, count: Int, timeout: Double) -> ProbeResult {
    let target = endpointText(ip: host, port: port)
    let what = "probing \(target)"
    let request = "GET / HTTP/1.0\r\nHost: \(hostHeader(host))\r\nAccept: text/plain\r\n\r\n"
    var speaksHTTP: Bool?
    var answers: [TestAnswer] = [], failures: [String] = []
    for _ in 0..<count {
        do {
            let text = try talk(
                host: host, port: port, timeout: timeout, listenFirst: speaksHTTP == nil ? 0.25 : 0,
                request: speaksHTTP == false ? nil : request, what: what,
                silent: "is this rsagent's test_service port?", refused: nil)
            if speaksHTTP == nil { speaksHTTP = text.hasPrefix("HTTP/") }
            if let a = parseTestReply(text) {
                answers.append(a)
            } else {
                let first = text.split(whereSeparator: \.isNewline).first.map { String($0.prefix(80)) } ?? ""
                failures.append("\(what): the answer is not rsagent's test line (got `\(first)`)")
            }
        } catch {
            failures.append("\(error)")
        }
    }
    return ProbeResult(target: target, attempts: count, answers: answers, failures: failures)
}
