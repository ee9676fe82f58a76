import ArgumentParser
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

// `rsagent --version` (what package scripts and fleet inventories run) answers from argv before
// anything else: building `CommandLine.arguments` alone is a sixth of a short run (the first
// `[String]` instantiates its generic metadata).
// `_exit`: `emit` has written with write(2), and nothing else ran whose exit handlers matter.
if CommandLine.argc == 2, let arg = CommandLine.unsafeArgv[1], strcmp(arg, "--version") == 0 {
    emit(RSAgentVersionString.value)
    _exit(0)
}

// No command at all: the help, as an error (scripts must not read "rsagent" alone as success).
if CommandLine.arguments.count == 1 {
    emitError(RSAgentCommand.helpMessage())
    exit(2)
}

/// The command line, parsed. (Each subcommand spells its `commandName`: deriving it from the
/// type's name demangles the type at run time, which alone cost more than the rest of a short
/// command.) Building the parser of the whole command tree is most of a short
/// command's run time (`rsagent weight` runs every few seconds under keepalived): a line that
/// names a subcommand is parsed by that subcommand alone, and only a line it cannot take
/// (`--help`, a mistake) goes to the whole tree, which words the help and errors as always.
func parseCommandLine() throws -> any ParsableCommand {
    let args = Array(CommandLine.arguments.dropFirst())
    if let name = args.first,
        let sub = RSAgentCommand.configuration.subcommands.first(where: { $0._commandName == name }),
        !args.contains(where: { $0 == "--help" || $0 == "-h" || $0 == "help" }),
        let command = try? sub.parseAsRoot(Array(args.dropFirst()))
    {
        return command
    }
    return try RSAgentCommand.parseAsRoot(args)
}

// Exit 2 for bad arguments (docs/json.md, "Exit codes"); swift-argument-parser's default is 64 (EX_USAGE).
do {
    var command = try parseCommandLine()
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
