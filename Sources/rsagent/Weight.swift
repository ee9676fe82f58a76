import ArgumentParser
import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

struct Weight: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weight",
        abstract: "Director side: read an agent's load report and print its weight.",
        discussion: """
            HOST:PORT is an agent's load.http port or its load.agent_check port; both are \
            understood. Prints the weight scaled to --max (0 while the agent drains). Exit 0, or 1 \
            when the agent is down, in maintenance or unreachable. With --keepalived the exit \
            status is the answer, for keepalived's MISC_CHECK with misc_dynamic: 2 + weight \
            (2 = weight 0 while draining), 1 when down, in maintenance or unreachable; set \
            misc_timeout above --timeout.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(
        help: ArgumentHelp("The agent: 192.0.2.21:3334, [2001:db8::21]:3333 or rs1:3334.", valueName: "HOST:PORT"))
    var agent: String
    @Option(help: ArgumentHelp("The weight of a fully idle realserver (1–253).", valueName: "N"))
    var max: Int = 100
    @Flag(help: "Exit with 2 + weight for keepalived's misc_dynamic (1 when down or unreachable).")
    var keepalived = false
    @Option(help: ArgumentHelp("Give up after this many seconds.", valueName: "SECONDS"))
    var timeout: Double = 2

    func validate() throws {
        guard (1...253).contains(max) else {
            throw ValidationError("--max \(max) must be 1–253 (keepalived reads 2 + weight from an exit status ≤ 255)")
        }
        guard timeout > 0 && timeout <= 60 else {
            throw ValidationError("--timeout must be more than 0 and at most 60 seconds")
        }
        guard Self.split(agent) != nil else {
            if let p = agent.split(separator: ":").last.flatMap({ Int($0) }), !(1...65535).contains(p) {
                throw ValidationError(
                    "\(agent): port \(p) is outside 1–65535; give the agent's load.http or load.agent_check port")
            }
            throw ValidationError("\(agent) is not HOST:PORT, e.g. 192.0.2.21:3334 or [2001:db8::21]:3333")
        }
    }

    static func split(_ text: String) -> (host: String, port: Int)? {
        if let e = Endpoint(text) { return (e.host.description, e.port) }
        guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":"), !text[..<colon].isEmpty,
            let p = Int(text[text.index(after: colon)...]), (1...65535).contains(p)
        else { return nil }
        return (String(text[..<colon]), p)
    }

    func run() throws {
        try global.enterNamespace()
        let (host, port) = Self.split(agent)!
        let reading: AgentReading
        do {
            reading = try readAgent(host: host, port: port, timeout: timeout)
        } catch {
            emitError("rsagent: \(error)")
            throw ExitCode(1)
        }
        emit(String(reading.weight(max: max)))
        switch reading {
        case .ready: break
        case .drain: emitError("rsagent: \(agent) is draining: weight 0, existing connections stay")
        case .maint: emitError("rsagent: \(agent) is in maintenance")
        case .down(let why): emitError("rsagent: \(agent) is down: \(why ?? "the agent gave no reason")")
        }
        if keepalived { throw ExitCode(reading.keepalivedExitCode(max: max)) }
        switch reading {
        case .maint, .down: throw ExitCode(1)
        default: break
        }
    }
}
