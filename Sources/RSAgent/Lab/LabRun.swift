import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// One run of `rsagent lab`: builds the cluster, starts the agents, shows the three views
/// (probe, ARP, agents) and remembers what it started so that everything can be ended. Output
/// goes through `say`; the CLI passes stdout.
public final class LabRun {
    public let net: LabNetwork
    let work: String
    /// This program, which the agents, the probe and the kept-lab cleanup run as.
    let binary: String
    let say: (String) -> Void
    var agents: [LabProcess] = []
    /// The director following the agents' weights (`LabFollower`).
    var follower: LabProcess?
    var director = LabDirector.ecmp(reason: "")

    public init(net: LabNetwork = LabNetwork(), say: @escaping (String) -> Void) {
        self.net = net
        self.say = say
        work = temporaryDirectory() + "rsagent-lab-\(getpid())"
        mkdir(work, 0o700)
        binary = symlinkTarget("/proc/self/exe") ?? CommandLine.arguments[0]
    }

    public struct Interrupted: Error, CustomStringConvertible {
        public var description: String { "interrupted" }
    }

    /// Builds the cluster, starts the agents and shows the three views; true when all passed.
    public func demonstrate(probes: Int, interrupted: () -> Bool) throws -> Bool {
        func checkpoint() throws { if interrupted() { throw Interrupted() } }
        director = LabDirector.choose(
            ipvsadm: systemTool("ipvsadm"), procIPVS: access("/proc/net/ip_vs", F_OK) == 0,
            modulePresent: LabDirector.kernelModulePresent())
        let kind: String
        switch director {
        case .ipvs: kind = "IPVS (ipvsadm, rr)"
        case .ecmp(let reason): kind = "an ECMP route hashed on ports, because \(reason)"
        }
        say(Style.bold("rsagent lab: LVS-DR in network namespaces \(LabNetwork.prefix)*; the director is \(kind)"))
        say(
            "  " + net.hosts.map { "\($0.role) \($0.address)" }.joined(separator: ", ")
                + "; VIP \(LabNetwork.vip) on lo of rs1 and rs2")
        try net.build()
        try checkpoint()
        try startAgents(interrupted: interrupted)
        say("  realservers set up by `rsagent run` with the built-in lab profile (profiles/lab.yaml)")
        switch director {
        case .ipvs: try startIPVS()
        case .ecmp: try net.routeThroughECMPDirector()
        }
        try startFollower(interrupted: interrupted)
        try checkpoint()
        let probePassed = try showProbe(probes)
        try checkpoint()
        let arp = try showARP()
        try checkpoint()
        showAgents()
        // Without arping the ARP verdict is skipped, not failed: the lab still shows the cluster.
        let passed = probePassed && arp != false
        let arpSummary =
            switch arp {
            case true?: "the ARP verdict holds"
            case false?: "the ARP verdict failed"
            case nil: "the ARP verdict was skipped (apt-get install arping to see it)"
            }
        say(
            (passed ? Style.green("pass") : Style.red("fail")) + ": "
                + (probePassed
                    ? "both realservers answered for the VIP through the director"
                    : "the probe did not see both realservers answering for the VIP") + "; " + arpSummary)
        return passed
    }

    /// The realservers: `rsagent run` with the built-in profile and a state directory each,
    /// ready when it tells its notify socket so (the host matches the profile, listeners bound).
    func startAgents(interrupted: () -> Bool) throws {
        var readiness: [AgentReadiness] = []
        for rs in net.realservers {
            let profile = "\(work)/\(rs.role).yaml"
            try writeTextFile(LabProfile.yaml(stateDir: "\(work)/\(rs.role)"), to: profile)
            let ready = try AgentReadiness(path: "\(work)/\(rs.role).notify")
            readiness.append(ready)
            agents.append(
                try LabProcess(
                    binary, ["run", "--netns", rs.namespace, "-c", profile], hostname: rs.role,
                    output: "\(work)/\(rs.role).log", environment: ["NOTIFY_SOCKET": ready.path]))
        }
        for (rs, (agent, ready)) in zip(net.realservers, zip(agents, readiness)) {
            // Up to a minute: slow machines, emulators.
            guard ready.waitForReady(timeout: 60, stop: interrupted) else {
                if interrupted() { throw Interrupted() }
                throw SystemError(
                    operation: "starting the agent on \(rs.role)",
                    reason: "it did not report ready within 60 s; its log: \(agent.text)")
            }
        }
    }

    /// `rsagent lab --follow-director` in the director's namespace; ready once it has set the
    /// weights the agents report for the first time (a failure to set them is logged as
    /// `director failed:` and, if it persists, ends the lab with the log).
    func startFollower(interrupted: () -> Bool) throws {
        let kind: String
        switch director {
        case .ipvs: kind = "ipvs"
        case .ecmp: kind = "ecmp"
        }
        let log = "\(work)/director.log"
        let p = try LabProcess(
            binary, ["lab", "--follow-director", kind], netns: net.host("director").namespace, output: log)
        follower = p
        let deadline = monotonicSeconds() + 15
        while !p.text.contains(" director: ") {
            if interrupted() { throw Interrupted() }
            guard monotonicSeconds() < deadline, p.wait(timeout: 0.1) == nil else {
                throw SystemError(
                    operation: "starting the lab's director",
                    reason: "it set no weights within 15 s; its log: \(p.text)")
            }
        }
        say(
            "  the director follows the agents' weights once a second (drained: no new connections); log: \(log)")
    }

    /// `rsagent probe` from the client; true when both realservers answered through the VIP.
    func showProbe(_ probes: Int) throws -> Bool {
        let client = net.host("client").namespace
        let target = "\(LabNetwork.vip):\(LabProfile.testPort)"
        say("\n" + Style.bold("probe from the client") + " (rsagent probe \(target) -n \(probes)):")
        let probe = try LabProcess.run(
            binary, ["probe", "--netns", client, target, "-n", String(probes), "--json"],
            output: "\(work)/probe.json", timeout: Double(probes) * 2 + 5)
        let result = try? JSON.decode(ProbeResult.self, from: probe.text)
        say(result?.rendered ?? probe.text)
        let rips = Set(result?.realservers.map(\.rip) ?? [])
        let viaVIP = result?.realservers.allSatisfy { $0.reached == [target] } ?? false
        return rips == Set(net.realservers.map(\.address.description)) && viaVIP
    }

    /// arping from the router; nil when the verdict cannot be had (no arping on this machine).
    func showARP() throws -> Bool? {
        say("\n" + Style.bold("ARP for \(LabNetwork.vip), asked by the router on the LAN") + " (arping):")
        let arp = try arpCheck()
        let mark =
            switch arp.pass {
            case true?: Style.green("pass")
            case false?: Style.red("fail")
            case nil: Style.yellow("skipped")
            }
        say("  " + mark + ": " + arp.text)
        return arp.pass
    }

    /// Each agent's report, read from the director's namespace as `rsagent weight` does.
    func showAgents() {
        say("\n" + Style.bold("agents") + " (rsagent weight RIP:\(LabProfile.loadHTTPPort), from the director):")
        var t = Table("REALSERVER", "RIP", "WEIGHT", "STATE")
        for rs in net.realservers {
            let reading = Result {
                try NamedNamespace.within(net.host("director").namespace) {
                    try readAgent(host: rs.address.description, port: LabProfile.loadHTTPPort, timeout: 5)
                }
            }
            let (weight, state) =
                switch reading {
                case .success(let r): (String(r.weight(max: 100)), r.stateWord)
                case .failure: ("-", "unreachable")
                }
            t.add(rs.role, rs.address.description, weight, state)
        }
        say(t.render())
    }

    /// `ipvsadm` in the director's namespace: both test-service ports, direct routing, rr.
    private func startIPVS() throws {
        try net.routeThroughIPVSDirector()
        let d = net.host("director").namespace
        for port in [LabProfile.testPort, LabProfile.testHTTPPort] {
            var commands = [["-A", "-t", "\(LabNetwork.vip):\(port)", "-s", "rr"]]
            for rs in net.realservers {
                commands.append([
                    "-a", "-t", "\(LabNetwork.vip):\(port)", "-r", "\(rs.address):\(port)", "-g", "-w", "100",
                ])
            }
            for c in commands {
                let r = try LabProcess.run(
                    systemTool("ipvsadm")!, c, netns: d, output: "\(work)/ipvsadm.txt", timeout: 10)
                guard r.status == 0 else {
                    throw SystemError(operation: "ipvsadm \(c.joined(separator: " ")) on the director", reason: r.text)
                }
            }
        }
        // What a director needs for drains: without it IPVS still sends a new connection to a
        // realserver at weight 0 when the client reuses the source port of an entry still in the
        // table (direct routing keeps closed connections there for up to two minutes).
        try NamedNamespace.writeSysctl(d, "net.ipv4.vs.expire_nodest_conn", 1)
    }

    /// arping from the router; each answering MAC named by the host it belongs to.
    private func arpCheck() throws -> (pass: Bool?, text: String) {
        guard let arping = systemTool("arping") else {
            return (
                nil, "arping is not installed, so nobody asked (apt-get install arping, then run rsagent lab again)"
            )
        }
        let names = try net.roleByMAC()
        func ask(_ ip: IPAddress) throws -> [String] {
            let r = try LabProcess.run(
                arping, ["-c", "2", "-w", "3", "-I", "eth0", ip.description], netns: net.host("router").namespace,
                output: "\(work)/arping.txt", timeout: 10)
            return arpResponders(r.text)
        }
        // A control first: the director's own address must be answered, or silence about the
        // VIP would prove nothing.
        let director = net.host("director")
        guard try ask(director.address).contains(where: { names[$0] == "director" }) else {
            return (false, "cannot tell: arping got no answer from the director's own address \(director.address)")
        }
        return arpVerdict(responders: try ask(LabNetwork.vip), names: names, director: self.director)
    }

    public var keepInstructions: String {
        var s = "\nThe lab stays up (rsagent lab --clean removes it). Enter a host with `ip netns exec NAME bash`:\n"
        for h in net.hosts { s += "  \(h.role): ip netns exec \(h.namespace) bash    (\(h.address))\n" }
        s += "  the bridge: ip netns exec \(LabNetwork.lan) bash\n"
        s +=
            "Agent logs: \(work)/rs1.log, \(work)/rs2.log; agent pids: \(agents.map { String($0.pid) }.joined(separator: ", "))\n"
        s += "The director's weights, as it follows the agents: \(work)/director.log\n"
        s +=
            "Try: ip netns exec \(net.host("client").namespace) rsagent probe \(LabNetwork.vip):\(LabProfile.testHTTPPort) -n 20\n"
        s +=
            "Then: rsagent drain -c \(work)/rs1.yaml, probe again (rs2 answers alone), rsagent ready -c \(work)/rs1.yaml\n"
        return s
    }

    /// Where `--keep` leaves the agents' pids and the work directory for `--clean`.
    static let keptPath = "/run/rsagent-lab.kept"

    /// Records what a kept lab runs, so `rsagent lab --clean` can end it later.
    public func recordKept() {
        let pids = (agents + (follower.map { [$0] } ?? [])).map { String($0.pid) }
        let text = ([work] + pids).joined(separator: "\n") + "\n"
        try? writeTextFile(text, to: Self.keptPath)
    }

    public func teardown() {
        for a in agents { a.stop() }
        agents = []
        follower?.stop()
        follower = nil
        // A kept lab's agents: ended by pid, and only while that pid is still this program.
        if let kept = readTextFile(Self.keptPath) {
            let lines = kept.split(separator: "\n").map(String.init)
            for pid in lines.dropFirst().compactMap({ pid_t($0) }) where symlinkTarget("/proc/\(pid)/exe") == binary {
                kill(pid, SIGTERM)
            }
            if let dir = lines.first, dir.hasPrefix(temporaryDirectory() + "rsagent-lab-") {
                removeTree(dir)
            }
            unlink(Self.keptPath)
        }
        // Agents and directors of a lab that ended without cleaning up (killed, crashed): this
        // program running `run --netns rslab-…` or `lab --follow-director`.
        for pid in strayAgents() { kill(pid, SIGTERM) }
        net.teardown()
        removeTree(work)
    }

    private func strayAgents() -> [pid_t] {
        let me = getpid()
        return directoryEntries("/proc").compactMap { entry in
            guard let pid = pid_t(entry), pid != me,
                let raw = readFile("/proc/\(pid)/cmdline")
            else { return nil }
            let args = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let agent =
                args.count >= 4 && args[1] == "run" && args[2] == "--netns" && args[3].hasPrefix(LabNetwork.prefix)
            let director = args.count >= 3 && args[1] == "lab" && args[2] == "--follow-director"
            guard agent || director, symlinkTarget("/proc/\(pid)/exe") == binary else { return nil }
            return pid
        }
    }
}

extension AgentReading {
    /// The agents table's STATE column.
    var stateWord: String {
        switch self {
        case .ready: "ready"
        case .drain: "drain"
        case .maint: "maint"
        case .down: "down"
        }
    }
}
