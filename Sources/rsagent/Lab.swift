import ArgumentParser
import Netlink
import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

/// Set by SIGINT/SIGTERM: the lab stops at the next step and removes what it made.
nonisolated(unsafe) private var interrupted: sig_atomic_t = 0

struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Build a throw-away LVS-DR cluster in network namespaces and show it working.",
        discussion: """
            As root: a client, a router, a director and two realservers on one bridge, each in a \
            network namespace named rslab-*. The realservers are set up by `rsagent run` itself \
            with the built-in lab profile (profiles/lab.yaml). The director is IPVS (ipvsadm) \
            when this kernel has ip_vs, otherwise an ECMP route that delivers the VIP to the \
            realservers the same way. Shows the probe table from the client, the ARP verdict \
            (arping from the router: no realserver may answer for the VIP) and each agent's \
            weight and state, then removes everything (also on Ctrl-C or an error). Exit 0 when \
            both realservers answered through the director and the ARP verdict passed.
            """)

    @Flag(help: "Leave the cluster running and print how to enter each namespace.")
    var keep = false
    @Flag(help: "Only remove the namespaces an earlier `rsagent lab --keep` left.")
    var clean = false
    @Option(name: .short, help: ArgumentHelp("Connections for the probe.", valueName: "COUNT"))
    var n: Int = 20

    func validate() throws {
        guard (1...10000).contains(n) else { throw ValidationError("-n \(n) must be 1–10000") }
    }

    func run() throws {
        guard getuid() == 0 else {
            emitError("rsagent: lab: building network namespaces needs root; run it with sudo")
            throw ExitCode(1)
        }
        let net = LabNetwork()
        let lab = try LabRun(net: net)
        if clean {
            lab.teardown()
            emit("removed: \(net.namespaces.joined(separator: ", "))")
            return
        }
        if !net.leftovers.isEmpty {
            emitError(
                "rsagent: lab: \(net.leftovers.joined(separator: ", ")) exist from an earlier lab (kept with --keep, or killed before it cleaned up); remove them with `rsagent lab --clean`"
            )
            throw ExitCode(1)
        }
        signal(SIGINT) { _ in interrupted = 1 }
        signal(SIGTERM) { _ in interrupted = 1 }
        signal(SIGHUP) { _ in interrupted = 1 }
        // Output piped into `head` must not kill the lab before it has cleaned up.
        signal(SIGPIPE, SIG_IGN)
        var passed = false
        do {
            passed = try lab.demonstrate(probes: n) { interrupted != 0 }
        } catch {
            emitError("rsagent: lab: \(error)")
        }
        if keep && interrupted == 0 {
            lab.recordKept()
            emit(lab.keepInstructions)
        } else {
            lab.teardown()
            emit("removed the lab's namespaces and processes")
        }
        if interrupted != 0 { throw ExitCode(130) }
        if !passed { throw ExitCode(1) }
    }
}

/// One run of the lab: what it started, so that everything can be ended.
final class LabRun {
    let net: LabNetwork
    let work: String
    let binary: String
    var agents: [LabProcess] = []
    var director = LabDirector.ecmp(reason: "")

    init(net: LabNetwork) throws {
        self.net = net
        work = temporaryDirectory() + "rsagent-lab-\(getpid())"
        mkdir(work, 0o700)
        binary =
            symlinkTarget("/proc/self/exe") ?? CommandLine.arguments[0]
    }

    struct Interrupted: Error, CustomStringConvertible { var description: String { "interrupted" } }

    /// Builds the cluster, starts the agents and shows the three views; true when all passed.
    func demonstrate(probes: Int, interrupted: () -> Bool) throws -> Bool {
        func checkpoint() throws { if interrupted() { throw Interrupted() } }
        director = LabDirector.choose(
            ipvsadm: systemTool("ipvsadm"), procIPVS: access("/proc/net/ip_vs", F_OK) == 0,
            modulePresent: LabDirector.kernelModulePresent())
        let kind: String
        switch director {
        case .ipvs: kind = "IPVS (ipvsadm, rr)"
        case .ecmp(let reason): kind = "an ECMP route hashed on ports, because \(reason)"
        }
        emit(Style.bold("rsagent lab: LVS-DR in network namespaces \(LabNetwork.prefix)*; the director is \(kind)"))
        emit(
            "  " + net.hosts.map { "\($0.role) \($0.address)" }.joined(separator: ", ")
                + "; VIP \(LabNetwork.vip) on lo of rs1 and rs2")
        try net.build()
        try checkpoint()
        // The realservers: rsagent run with the built-in profile, nothing else.
        for rs in net.realservers {
            let profile = "\(work)/\(rs.role).yaml"
            try writeTextFile(
                LabProfile.text.replacingAll("state_dir: /var/lib/rsagent/lab", with: "state_dir: \(work)/\(rs.role)"),
                to: profile)
            agents.append(
                try LabProcess(
                    binary, ["run", "--netns", rs.namespace, "-c", profile], hostname: rs.role,
                    output: "\(work)/\(rs.role).log"))
        }
        for (rs, agent) in zip(net.realservers, agents) {
            var ready = false
            for _ in 0..<1200 where !ready {  // up to a minute: slow machines, emulators
                try checkpoint()
                ready = agent.text.includes("running: watching")
                if !ready { usleep(50_000) }
            }
            guard ready else { throw SystemError(operation: "starting the agent on \(rs.role)", reason: agent.text) }
        }
        emit("  realservers set up by `rsagent run` with the built-in lab profile (profiles/lab.yaml)")
        switch director {
        case .ipvs: try startIPVS()
        case .ecmp: try net.routeThroughECMPDirector()
        }
        try checkpoint()

        let client = net.host("client").namespace
        emit("\n" + Style.bold("probe from the client") + " (rsagent probe \(LabNetwork.vip):31337 -n \(probes)):")
        let probe = try LabProcess.run(
            binary, ["probe", "--netns", client, "\(LabNetwork.vip):31337", "-n", String(probes), "--json"],
            output: "\(work)/probe.json", timeout: Double(probes) * 2 + 5)
        let result = try? JSON.decode(ProbeResult.self, from: probe.text)
        emit(result?.rendered ?? probe.text)
        let rips = Set(result?.realservers.map(\.rip) ?? [])
        let viaVIP = result?.realservers.allSatisfy { $0.reached == ["\(LabNetwork.vip):31337"] } ?? false
        let probePassed = rips == Set(net.realservers.map(\.address.description)) && viaVIP
        try checkpoint()

        emit("\n" + Style.bold("ARP for \(LabNetwork.vip), asked by the router on the LAN") + " (arping):")
        let arp = try arpCheck()
        let mark =
            switch arp.pass {
            case true?: Style.green("pass")
            case false?: Style.red("fail")
            case nil: Style.yellow("skipped")
            }
        emit("  " + mark + ": " + arp.text)
        try checkpoint()

        emit("\n" + Style.bold("agents") + " (rsagent weight RIP:3334, from the director):")
        var t = Table("REALSERVER", "RIP", "WEIGHT", "STATE")
        for rs in net.realservers {
            let w = try LabProcess.run(
                binary, ["weight", "--netns", net.host("director").namespace, "\(rs.address):3334"],
                output: "\(work)/weight-\(rs.role).txt", timeout: 5)
            let state = w.status == 0 ? "ready" : w.text.includes("maint") ? "maint" : "down/unreachable"
            t.add(rs.role, rs.address.description, w.text.split(separator: "\n").first.map(String.init) ?? "-", state)
        }
        emit(t.render())
        // Without arping the ARP verdict is skipped, not failed: the lab still shows the cluster.
        let passed = probePassed && arp.pass != false
        let arpSummary =
            switch arp.pass {
            case true?: "the ARP verdict holds"
            case false?: "the ARP verdict failed"
            case nil: "the ARP verdict was skipped (apt-get install arping to see it)"
            }
        emit(
            (passed ? Style.green("pass") : Style.red("fail")) + ": "
                + (probePassed
                    ? "both realservers answered for the VIP through the director"
                    : "the probe did not see both realservers answering for the VIP") + "; " + arpSummary)
        return passed
    }

    /// `ipvsadm` in the director's namespace: both test-service ports, direct routing, rr.
    private func startIPVS() throws {
        try net.routeThroughIPVSDirector()
        let d = net.host("director").namespace
        for port in [31337, 31380] {
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
    }

    /// arping from the router; each answering MAC named by the host it belongs to. `pass` is nil
    /// when the verdict cannot be had (no arping on this machine).
    private func arpCheck() throws -> (pass: Bool?, text: String) {
        guard let arping = systemTool("arping") else {
            return (
                nil, "arping is not installed, so nobody asked (apt-get install arping, then run rsagent lab again)"
            )
        }
        var names: [String: String] = [:]
        for h in net.hosts {
            let s = try NamedNamespace.within(h.namespace) { try RouteSocket() }
            if let mac = try s.links().first(where: { $0.name == "eth0" })?.mac { names[mac] = h.role }
        }
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

    var keepInstructions: String {
        var s = "\nThe lab stays up (rsagent lab --clean removes it). Enter a host with `ip netns exec NAME bash`:\n"
        for h in net.hosts { s += "  \(h.role): ip netns exec \(h.namespace) bash    (\(h.address))\n" }
        s += "  the bridge: ip netns exec \(LabNetwork.lan) bash\n"
        s +=
            "Agent logs: \(work)/rs1.log, \(work)/rs2.log; agent pids: \(agents.map { String($0.pid) }.joined(separator: ", "))\n"
        s += "Try: ip netns exec \(net.host("client").namespace) rsagent probe \(LabNetwork.vip):31380 -n 20\n"
        return s
    }

    /// Where `--keep` leaves the agents' pids and the work directory for `--clean`.
    static let keptPath = "/run/rsagent-lab.kept"

    /// Records what a kept lab runs, so `rsagent lab --clean` can end it later.
    func recordKept() {
        let text = ([work] + agents.map { String($0.pid) }).joined(separator: "\n") + "\n"
        try? text.write(toFile: Self.keptPath, atomically: true, encoding: .utf8)
    }

    func teardown() {
        for a in agents { a.stop() }
        agents = []
        // A kept lab's agents: ended by pid, and only while that pid is still this program.
        if let kept = readTextFile(Self.keptPath) {
            let lines = kept.split(separator: "\n").map(String.init)
            for pid in lines.dropFirst().compactMap({ pid_t($0) }) {
                let exe = symlinkTarget("/proc/\(pid)/exe")
                if exe == binary { kill(pid, SIGTERM) }
            }
            if let dir = lines.first, dir.hasPrefix(temporaryDirectory() + "rsagent-lab-") {
                removeTree(dir)
            }
            unlink(Self.keptPath)
        }
        // Agents of a lab that ended without cleaning up (killed, crashed): this program running
        // `run --netns rslab-…`.
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
            guard args.count >= 4, args[1] == "run", args[2] == "--netns", args[3].hasPrefix(LabNetwork.prefix),
                symlinkTarget("/proc/\(pid)/exe") == binary
            else { return nil }
            return pid
        }
    }
}
