import ArgumentParser
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
            realservers the same way. The director follows the agents' weights once a second (a drained \
            realserver gets no new connections). Shows the probe table from the client, the ARP verdict \
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
    /// The lab's director following the agents' weights (`LabFollower`): started by the lab
    /// itself in the director's namespace, `ipvs` or `ecmp`.
    @Option(help: .hidden)
    var followDirector: String?

    func validate() throws {
        guard (1...10000).contains(n) else { throw ValidationError("-n \(n) must be 1–10000") }
        if let followDirector, !["ipvs", "ecmp"].contains(followDirector) {
            throw ValidationError("--follow-director is ipvs or ecmp")
        }
    }

    func run() throws {
        guard getuid() == 0 else {
            emitError("rsagent: lab: building network namespaces needs root; run it with sudo")
            throw ExitCode(1)
        }
        if let followDirector {
            signal(SIGTERM) { _ in interrupted = 1 }
            signal(SIGINT) { _ in interrupted = 1 }
            LabFollower(ipvsadm: followDirector == "ipvs" ? systemTool("ipvsadm") : nil, say: emit).run {
                interrupted != 0
            }
            return
        }
        let net = LabNetwork()
        let lab = LabRun(net: net, say: emit)
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
