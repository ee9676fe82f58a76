import ArgumentParser
import Foundation
import RSAgent

enum RSAgentVersionString { static let value = RSAgentVersion.string }

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
            emitError("rsagent: \(error)")
            throw ExitCode(2)
        }
    }
}

/// `-c PROFILE`.
struct ProfileOption: ParsableArguments {
    @Option(
        name: [.customShort("c"), .customLong("config")],
        help: ArgumentHelp("The profile (YAML).", valueName: "PROFILE"))
    var profile: String

    /// Decodes and validates the profile; on problems prints each with file:line:column and
    /// exits 2 before anything is touched.
    func load() throws -> Profile {
        do {
            return try ProfileDecoder.load(path: profile)
        } catch let e as ProfileError {
            emitError(e.description)
            emitError("rsagent: \(profile) has \(e.problems.count) problem(s); nothing was changed")
            throw ExitCode(2)
        }
    }
}

/// Opens the kernel host, turning failure into one sentence and exit 1.
func openHost() throws -> KernelHost {
    do { return try KernelHost() } catch {
        emitError("rsagent: opening rtnetlink: \(error); run on Linux as root")
        throw ExitCode(1)
    }
}

/// Runs `body`, printing any unexpected error as one line and exiting 1.
func reportingErrors<T>(_ doing: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch {
        emitError("rsagent: \(doing): \(error)")
        throw ExitCode(1)
    }
}
