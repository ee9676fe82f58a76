import ArgumentParser
import FoundationEssentials
import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

/// rsagent: make and keep a Linux host a correct LVS-DR / LVS-Tun realserver.
struct RSAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rsagent",
        abstract: "Make a Linux host a correct LVS-DR / LVS-Tun realserver, from one YAML profile.",
        discussion: """
            Exit status: 0 success, 1 runtime failure, 2 invalid profile or arguments (nothing \
            touched), 3 drift found (status).
            """,
        version: RSAgentVersionString.value,
        subcommands: [
            Apply.self, Down.self, Status.self, Check.self, Run.self, Drain.self, Maint.self, Ready.self, Weight.self,
            Probe.self, Lab.self,
        ]
    )
}

/// Calls the async `run()` (on an existential the synchronous requirement would win).
func runAsync<C: AsyncParsableCommand>(_ command: inout C) async throws { try await command.run() }

// No command at all: the help, as an error (scripts must not read "rsagent" alone as success).
if CommandLine.arguments.count == 1 {
    emitError(RSAgentCommand.helpMessage())
    exit(2)
}

// DESIGN.md fixes exit 2 for bad arguments; swift-argument-parser's default is 64 (EX_USAGE).
do {
    var command = try RSAgentCommand.parseAsRoot()
    if var daemon = command as? any AsyncParsableCommand {
        try await runAsync(&daemon)
    } else {
        try command.run()
    }
} catch {
    if RSAgentCommand.exitCode(for: error) == .validationFailure {
        // Under keepalived's misc_dynamic, 2 would mean "weight 0": a mistyped MISC_CHECK
        // must fail the check visibly instead of quietly draining the realserver.
        let code: Int32 = CommandLine.arguments.contains("--keepalived") ? 1 : 2
        if wantsJSON {
            _ = fail(RSAgentCommand.message(for: error), code: code)
        } else {
            emitError(RSAgentCommand.fullMessage(for: error))
        }
        exit(code)
    }
    RSAgentCommand.exit(withError: error)
}
