import ArgumentParser
import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Client side: connect to a VIP's test service again and again; tabulate who answered.",
        discussion: """
            VIP:PORT is the test service's plain port (test_service.port, 31337) or its HTTP port; \
            both are understood. Each connection comes from a new source port, so the director \
            may pick another realserver each time. REACHED is the address each realserver says \
            the connection arrived for: the VIP when the director sent it. Exit 1 when no \
            realserver answered.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: ArgumentHelp("The service: 192.0.2.100:31337 or [2001:db8::100]:31380.", valueName: "VIP:PORT"))
    var target: String
    @Option(name: .short, help: ArgumentHelp("How many connections.", valueName: "COUNT"))
    var n: Int = 20
    @Option(help: ArgumentHelp("Seconds to wait for each answer.", valueName: "SECONDS"))
    var timeout: Double = 2
    @Flag(help: "Print one JSON document (schema rsagent.probe/1).")
    var json = false

    func validate() throws {
        guard (1...1_000_000).contains(n) else { throw ValidationError("-n \(n) must be 1–1000000 connections") }
        guard timeout > 0 && timeout <= 60 else {
            throw ValidationError("--timeout must be more than 0 and at most 60 seconds")
        }
        guard Weight.split(target) != nil else {
            throw ValidationError("\(target) is not VIP:PORT, e.g. 192.0.2.100:31337 or [2001:db8::100]:31380")
        }
    }

    func run() throws {
        try global.enterNamespace()
        let (host, port) = Weight.split(target)!
        let result = probe(host: host, port: port, count: n, timeout: timeout)
        emit(json ? renderJSON(result) : result.rendered)
        if result.answered == 0 { throw ExitCode(1) }
    }
}
