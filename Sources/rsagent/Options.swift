import ArgumentParser
import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

enum RSAgentVersionString { static let value = RSAgentVersion.string }

/// The profile every command reads when `-c` is not given: the one the systemd unit runs.
let defaultProfilePath = "/etc/rsagent/rsagent.yaml"

/// `--json` anywhere on the command line: then every failure, even one found before the
/// command's own options are parsed, is one JSON document on stdout.
let wantsJSON = CommandLine.arguments.dropFirst().contains("--json")

/// `{"error": {...}}`: what scripts get instead of a report when a command cannot run.
struct ErrorDocument: Encodable {
    struct Body: Encodable {
        var message: String
        var exitCode: Int32
        var problems: [ProfileProblem]?
        enum CodingKeys: String, CodingKey { case message, exitCode = "exit_code", problems }
    }
    var error: Body
}

/// Says `message` (and each profile problem) on stderr — and, under `--json`, as one JSON
/// document on stdout — then exits with `code`.
func fail(_ message: String, problems: [ProfileProblem]? = nil, code: Int32) -> ExitCode {
    if let problems { emitError(problems.map(\.description).joined(separator: "\n")) }
    emitError("rsagent: " + message)
    if wantsJSON {
        emit(renderJSON(ErrorDocument(error: .init(message: message, exitCode: code, problems: problems))))
    }
    return ExitCode(code)
}

/// Flags every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("Run inside the network namespace /run/netns/NAME (like `ip -n NAME`).", valueName: "NAME"))
    var netns: String?

    /// Enters the namespace; call first thing in `run()`.
    func enterNamespace() throws {
        guard let netns else { return }
        do { try NetworkNamespace.enter(netns) } catch {
            throw fail("\(error)", code: 2)
        }
    }
}

/// `-c PROFILE`.
struct ProfileOption: ParsableArguments {
    @Option(
        name: [.customShort("c"), .customLong("config")],
        help: ArgumentHelp("The profile (YAML).", valueName: "PROFILE"))
    var profile: String = defaultProfilePath

    /// Starts decoding on another thread while the caller reads the host; pass it to `load`.
    func decodeInBackground() -> Background<Profile> {
        let path = profile
        return Background { try ProfileDecoder.load(path: path) }
    }

    /// Decodes and validates the profile (or takes what `decodeInBackground` decoded); on
    /// problems prints each with file:line:column and exits 2 before anything is touched.
    func load(_ pending: Background<Profile>? = nil) throws -> Profile {
        do {
            return try pending?.value() ?? ProfileDecoder.load(path: profile)
        } catch let e as ProfileError {
            throw fail(
                "\(profile) has \(e.problems.count) problem(s); nothing was changed", problems: e.problems, code: 2)
        }
    }
}

/// Opens the kernel host, turning failure into one sentence and exit 1.
func openHost() throws -> KernelHost {
    do { return try KernelHost() } catch {
        throw fail("opening rtnetlink: \(error); run on Linux as root", code: 1)
    }
}

/// Runs `body`, printing any unexpected error as one line and exiting 1.
func reportingErrors<T>(_ doing: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch {
        throw fail("\(doing): \(error)", code: 1)
    }
}
