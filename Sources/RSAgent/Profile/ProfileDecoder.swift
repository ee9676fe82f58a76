import Netlink
import YAML

#if canImport(Glibc)
    import Glibc
#endif

/// One thing wrong with a profile, located in its file.
public struct ProfileProblem: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
    /// `file:line:column: message`, or `file: message` for a problem of the whole file.
    public var description: String { line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)" }
}

/// All the problems of one profile: rsagent reports every one, not just the first.
public struct ProfileError: Error, Sendable, CustomStringConvertible {
    public var problems: [ProfileProblem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Turns YAML text into a validated `Profile`, or lists every problem with line:column.
///
/// The YAML is composed into a node tree (not decoded with `Codable`) so that unknown keys,
/// duplicate keys and wrong types are all reported with their position, and decoding goes on
/// after the first problem.
public struct ProfileDecoder {
    public let file: String
    var problems: [ProfileProblem] = []
    /// Reads the files an `include:` pattern names: (path, text or nil when unreadable), sorted.
    public typealias IncludeReader = (_ pattern: String) -> [(path: String, text: String?)]
    var readInclude: IncludeReader?
    /// Every VIP seen so far, in this file and in the files it includes: where it was first listed.
    var seenVIPs: [IPAddress: (file: String, line: Int)] = [:]

    public init(file: String) { self.file = file }

    /// Reads and decodes a profile file.
    public static func load(path: String) throws -> Profile {
        guard let text = readTextFile(path) else {
            let why = unreadableReason(path)
            throw ProfileError(problems: [
                ProfileProblem(
                    file: path, line: 0, column: 0,
                    message:
                        "reading the profile failed: \(why); pass an existing file with -c (examples in /etc/rsagent/profiles)"
                )
            ])
        }
        return try decode(text, file: path, include: filesMatching(relativeTo: path))
    }

    /// Decodes a profile; `include` reads the files of its `include:` patterns (nil: the key is
    /// an error, for callers that have no files).
    public static func decode(_ text: String, file: String = "profile", include: IncludeReader? = nil) throws
        -> Profile
    {
        var d = ProfileDecoder(file: file)
        d.readInclude = include
        return try d.run(text)
    }

    /// Why `path` could not be read, in the system's words: "it is a directory", "no such
    /// file", "permission denied".
    static func unreadableReason(_ path: String) -> String {
        var st = stat()
        if stat(path, &st) != 0 { return errno == ENOENT ? "no such file" : systemMessage(errno) }
        if st.st_mode & S_IFMT == S_IFDIR { return "it is a directory, not a file" }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return errno == EACCES ? "permission denied (run as root?)" : systemMessage(errno) }
        close(fd)
        return "it cannot be read"
    }

    /// Files matching a shell pattern (`/etc/rsagent/conf.d/*.yaml`; relative patterns from the
    /// profile's directory), sorted, as `glob(3)` finds them. No match is no file: an empty
    /// `conf.d` is fine.
    static func filesMatching(relativeTo profilePath: String) -> IncludeReader {
        let dir = profilePath.contains("/") ? String(profilePath[..<profilePath.lastIndex(of: "/")!]) : "."
        return { pattern in
            let full = pattern.hasPrefix("/") ? pattern : (dir.isEmpty ? "" : dir) + "/" + pattern
            var g = glob_t()
            defer { globfree(&g) }
            guard glob(full, 0, nil, &g) == 0 else { return [] }
            return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted().map {
                (path: $0, text: readFile($0).map { String(decoding: $0, as: UTF8.self) })
            }
        }
    }

    mutating func run(_ text: String) throws -> Profile {
        let root = try parse(profile: text)
        let top = fields(root, ProfileKey.self, context: "the profile")
        let mode = decodeMode(top, root: root)
        let (device, deviceName) = decodeDevice(top, mode: mode)
        let interfaces = top[.interfaces].map { decodeInterfaces($0) }
        var included: [ProfileProblem] = []
        let vips = decodeAllVIPs(top, ipv4Only: mode == .tun && device == .tunl0, root: root, included: &included)
        let tunnel = mode == .tun ? decodeTunnel(top[.tunnel]) : nil
        if mode == .dr, let n = top[.tunnel] {
            problem(
                n, "`tunnel:` is for `mode: tun` (what the director's tunnel packets are); remove it for `mode: dr`")
        }
        let arp = top[.arp].map { decodeARP($0) } ?? ARPSettings()
        let rp: RPFilterPolicy = top[.rpFilter].flatMap { choice($0, "rp_filter") } ?? (mode == .tun ? .loose : .leave)
        let load = top[.load].map { decodeLoad($0) }
        let test = top[.testService].map { decodeTestService($0) }
        checkPortClashes(load: load, test: test, node: top[.testService] ?? top[.load] ?? root)
        let stateDir = top[.stateDir].flatMap { decodeStateDir($0) } ?? Profile.defaultStateDir
        let onStop: OnStop = top[.onStop].flatMap { choice($0, "on_stop") } ?? .keep
        let initial = top[.initialState].flatMap { decodeInitialState($0) } ?? .ready
        let drainTimeout = top[.drainTimeout].flatMap { duration($0, "drain_timeout", in: 0...86400) } ?? 300
        if !problems.isEmpty || !included.isEmpty {
            // This file's problems in order, then each included file's.
            throw ProfileError(problems: problems.sorted { ($0.line, $0.column) < ($1.line, $1.column) } + included)
        }
        var profile = Profile(
            mode: mode, device: device, deviceName: deviceName, interfaces: interfaces, vips: vips,
            arp: arp, rpFilter: rp, load: load, testService: test, stateDir: stateDir, onStop: onStop,
            initialState: initial)
        profile.drainTimeout = drainTimeout
        profile.tunnel = tunnel
        return profile
    }

    /// The document as a node tree, or the one problem that stops reading it at all.
    mutating func parse(profile text: String) throws -> Node {
        if let bad = Self.controlCharacter(in: text) {
            throw ProfileError(problems: [controlProblem(bad)])
        }
        let root: Node?
        do {
            // Every scalar stays text: this decoder converts each value itself, so nothing is
            // guessed from YAML 1.1's implicit types (`no`, `0x10`, `1_000`).
            root = try compose(text)
        } catch {
            throw ProfileError(problems: [yamlProblem(error, text: text)])
        }
        guard let root, case .mapping = root else {
            problem(root, "the profile must be a YAML mapping with at least `mode:` and `vips:`")
            throw ProfileError(problems: problems)
        }
        return root
    }

    // MARK: top-level sections

    mutating func decodeMode(_ top: [ProfileKey: Node], root: Node) -> Mode {
        if let n = top[.mode] { return choice(n, "mode") ?? .dr }
        problem(
            root,
            "`mode:` is missing; say `mode: dr` (direct routing) or `mode: tun` (the director tunnels: ipip, GUE or GRE)"
        )
        return .dr
    }

    /// `device:` and `device_name:`: the kind, and the name of the device the VIPs go on.
    mutating func decodeDevice(_ top: [ProfileKey: Node], mode: Mode) -> (DeviceKind, String) {
        let device: DeviceKind = top[.device].flatMap { choice($0, "device") } ?? (mode == .tun ? .tunl0 : .lo)
        if let n = top[.device] {
            if mode == .tun && device == .dummy {
                problem(
                    n,
                    "`device: dummy` does not work with `mode: tun`: the VIPs go on lo (any family) or on tunl0 (IPv4, the default for tun)"
                )
            } else if mode == .dr && device == .tunl0 {
                problem(n, "`device: tunl0` is for `mode: tun`; with `mode: dr` use `lo` or `dummy`")
            }
        }
        var name = device == .dummy ? Profile.defaultDummyName : device.rawValue
        if let n = top[.deviceName], let s = string(n, "device_name") {
            if device != .dummy {
                problem(
                    n, "`device_name:` applies only to `device: dummy` (rsagent names and owns that device); remove it")
            } else if let why = Self.invalidInterfaceName(s) {
                problem(n, "device_name `\(s)` \(why)")
            } else if s == "lo" || s == "tunl0" {
                problem(n, "device_name `\(s)` is a system device; pick a name of your own such as `lvs0`")
            } else {
                name = s
            }
        }
        return (device, name)
    }

    mutating func decodeInterfaces(_ n: Node) -> [String] {
        var out: [String] = []
        var seen: Set<String> = []
        for item in list(n, "interfaces") {
            guard let s = string(item, "interfaces entry") else { continue }
            if let why = Self.invalidInterfaceName(s) {
                problem(item, "interface `\(s)` \(why)")
            } else if s == "lo" {
                problem(
                    item, "`lo` does not face the director; list the interface the director's packets arrive on (eth0…)"
                )
            } else if !seen.insert(s).inserted {
                problem(item, "interface `\(s)` is listed twice")
            } else {
                out.append(s)
            }
        }
        if case .sequence(let seq, _) = n, seq.isEmpty {
            problem(
                n,
                "`interfaces:` is empty; list the interfaces facing the director, or remove the key to use the default route's"
            )
        }
        return out
    }

    /// `vips:` and the VIPs of the files `include:` names; the included files' problems go to
    /// `included`, under their own names.
    mutating func decodeAllVIPs(
        _ top: [ProfileKey: Node], ipv4Only: Bool, root: Node, included: inout [ProfileProblem]
    ) -> [VIP] {
        var vips: [VIP] = []
        if let n = top[.vips] {
            vips = decodeVIPs(n, ipv4Only: ipv4Only, allowEmpty: top[.include] != nil)
        } else if top[.include] == nil {
            problem(root, "`vips:` is missing; list the virtual IPs the director balances, e.g. `vips: [192.0.2.100]`")
        }
        if let n = top[.include] {
            vips += decodeIncludes(n, ipv4Only: ipv4Only, problems: &included)
            if vips.isEmpty && included.isEmpty {
                problem(n, "no VIPs: neither `vips:` nor the files of `include:` list any; add at least one VIP")
            }
        }
        return vips
    }

    mutating func decodeARP(_ n: Node) -> ARPSettings {
        var arp = ARPSettings()
        let f = fields(n, ARPKey.self, context: "`arp:`")
        if let v = f[.ignore], let i = int(v, "arp.ignore") {
            if [1, 2, 3, 8].contains(i) {
                arp.ignore = i
            } else {
                problem(
                    v,
                    "arp.ignore \(i) is not allowed: use 1 (reply only for addresses on the receiving interface; the LVS setting), 2, 3 or 8 — 0 would let this host answer ARP for the VIPs"
                )
            }
        }
        if let v = f[.announce], let i = int(v, "arp.announce") {
            if [1, 2].contains(i) {
                arp.announce = i
            } else {
                problem(
                    v,
                    "arp.announce \(i) is not allowed: use 2 (never announce a VIP as ARP source; the LVS setting) or 1"
                )
            }
        }
        if let v = f[.scope], let s: ARPScope = choice(v, "arp.scope") { arp.scope = s }
        return arp
    }

    mutating func decodeStateDir(_ n: Node) -> String? {
        guard let s = string(n, "state_dir") else { return nil }
        guard s.hasPrefix("/") && !s.contains("\0") else {
            problem(n, "state_dir `\(s)` must be an absolute path such as /var/lib/rsagent")
            return nil
        }
        return s
    }

    mutating func decodeInitialState(_ n: Node) -> AdminState? {
        guard let v: AdminState = choice(n, "initial_state") else { return nil }
        if v == .maint {
            problem(
                n,
                "initial_state maint is not allowed: a realserver in maintenance from the start is never set up; use drain"
            )
            return nil
        }
        return v
    }

    /// Why `name` cannot be a Linux interface name, or nil (the kernel's `dev_valid_name`).
    static func invalidInterfaceName(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > 15 { return "is longer than 15 bytes, the kernel's limit (IFNAMSIZ)" }
        if name == "." || name == ".." { return "is not a valid interface name" }
        if name.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }) {
            return "contains '/', ':' or whitespace, which interface names cannot"
        }
        return nil
    }
}
