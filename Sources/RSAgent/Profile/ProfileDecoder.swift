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
    private var problems: [ProfileProblem] = []
    /// Reads the files an `include:` pattern names: (path, text or nil when unreadable), sorted.
    public typealias IncludeReader = (_ pattern: String) -> [(path: String, text: String?)]
    private var readInclude: IncludeReader?
    /// Every VIP seen so far, in this file and in the files it includes: where it was first listed.
    private var seenVIPs: [IPAddress: (file: String, line: Int)] = [:]

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

    static let topKeys = [
        "mode", "device", "device_name", "interfaces", "vips", "arp", "rp_filter",
        "load", "test_service", "state_dir", "on_stop", "initial_state", "include",
    ]

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
        let top = fields(root, allowed: Self.topKeys, context: "the profile")

        let mode: Mode =
            top["mode"].flatMap { choice($0, "mode") }
            ?? {
                if top["mode"] == nil {
                    problem(
                        root, "`mode:` is missing; say `mode: dr` (direct routing) or `mode: tun` (IP-in-IP tunnel)")
                }
                return .dr
            }()
        let device: DeviceKind = top["device"].flatMap { choice($0, "device") } ?? (mode == .tun ? .tunl0 : .lo)
        if let n = top["device"] {
            if mode == .tun && device != .tunl0 {
                problem(
                    n,
                    "`device: \(device.rawValue)` does not work with `mode: tun`: the director's IP-in-IP packets are decapsulated on tunl0; use `device: tunl0` (the default for tun)"
                )
            } else if mode == .dr && device == .tunl0 {
                problem(n, "`device: tunl0` is for `mode: tun`; with `mode: dr` use `lo` or `dummy`")
            }
        }
        var deviceName = device == .dummy ? Profile.defaultDummyName : device.rawValue
        if let n = top["device_name"], let s = string(n, "device_name") {
            if device != .dummy {
                problem(
                    n, "`device_name:` applies only to `device: dummy` (rsagent names and owns that device); remove it")
            } else if let why = Self.invalidInterfaceName(s) {
                problem(n, "device_name `\(s)` \(why)")
            } else if s == "lo" || s == "tunl0" {
                problem(n, "device_name `\(s)` is a system device; pick a name of your own such as `lvs0`")
            } else {
                deviceName = s
            }
        }
        var interfaces: [String]?
        if let n = top["interfaces"] {
            interfaces = []
            var seen: [String: Node] = [:]
            for item in list(n, "interfaces") {
                guard let s = string(item, "interfaces entry") else { continue }
                if let why = Self.invalidInterfaceName(s) { problem(item, "interface `\(s)` \(why)"); continue }
                if s == "lo" {
                    problem(
                        item,
                        "`lo` does not face the director; list the interface the director's packets arrive on (eth0…)");
                    continue
                }
                if seen[s] != nil { problem(item, "interface `\(s)` is listed twice"); continue }
                seen[s] = item
                interfaces?.append(s)
            }
            if case .sequence(let seq, _) = n, seq.isEmpty {
                problem(
                    n,
                    "`interfaces:` is empty; list the interfaces facing the director, or remove the key to use the default route's"
                )
            }
        }

        var vips: [VIP] = []
        if let n = top["vips"] {
            vips = decodeVIPs(n, mode: mode, allowEmpty: top["include"] != nil)
        } else if top["include"] == nil {
            problem(root, "`vips:` is missing; list the virtual IPs the director balances, e.g. `vips: [192.0.2.100]`")
        }
        var included: [ProfileProblem] = []
        if let n = top["include"] {
            vips += decodeIncludes(n, mode: mode, problems: &included)
            if vips.isEmpty && included.isEmpty {
                problem(n, "no VIPs: neither `vips:` nor the files of `include:` list any; add at least one VIP")
            }
        }

        var arp = ARPSettings()
        if let n = top["arp"] {
            let f = fields(n, allowed: ["ignore", "announce", "scope"], context: "`arp:`")
            if let v = f["ignore"], let i = int(v, "arp.ignore") {
                if [1, 2, 3, 8].contains(i) {
                    arp.ignore = i
                } else {
                    problem(
                        v,
                        "arp.ignore \(i) is not allowed: use 1 (reply only for addresses on the receiving interface; the LVS setting), 2, 3 or 8 — 0 would let this host answer ARP for the VIPs"
                    )
                }
            }
            if let v = f["announce"], let i = int(v, "arp.announce") {
                if [1, 2].contains(i) {
                    arp.announce = i
                } else {
                    problem(
                        v,
                        "arp.announce \(i) is not allowed: use 2 (never announce a VIP as ARP source; the LVS setting) or 1"
                    )
                }
            }
            if let v = f["scope"], let s: ARPScope = choice(v, "arp.scope") { arp.scope = s }
        }

        var rp: RPFilterPolicy = mode == .tun ? .loose : .leave
        if let n = top["rp_filter"], let v: RPFilterPolicy = choice(n, "rp_filter") { rp = v }

        var load: LoadSettings?
        if let n = top["load"] { load = decodeLoad(n) }
        var test: TestServiceSettings?
        if let n = top["test_service"] { test = decodeTestService(n) }
        checkPortClashes(load: load, test: test, node: top["test_service"] ?? top["load"] ?? root)

        var stateDir = Profile.defaultStateDir
        if let n = top["state_dir"], let s = string(n, "state_dir") {
            if s.hasPrefix("/") && !s.contains("\0") {
                stateDir = s
            } else {
                problem(n, "state_dir `\(s)` must be an absolute path such as /var/lib/rsagent")
            }
        }
        let onStop: OnStop = top["on_stop"].flatMap { choice($0, "on_stop") } ?? .keep
        var initial = AdminState.ready
        if let n = top["initial_state"], let v: AdminState = choice(n, "initial_state") {
            if v == .maint {
                problem(
                    n,
                    "initial_state maint is not allowed: a realserver in maintenance from the start is never set up; use drain"
                )
            } else {
                initial = v
            }
        }

        if !problems.isEmpty || !included.isEmpty {
            // This file's problems in order, then each included file's.
            throw ProfileError(problems: problems.sorted { ($0.line, $0.column) < ($1.line, $1.column) } + included)
        }
        return Profile(
            mode: mode, device: device, deviceName: deviceName, interfaces: interfaces, vips: vips,
            arp: arp, rpFilter: rp, load: load, testService: test, stateDir: stateDir, onStop: onStop,
            initialState: initial)
    }

    // MARK: sections

    /// `include:` — one pattern or a list; each matching file holds only `vips:`, merged into
    /// this profile. Its problems carry its own file name.
    mutating func decodeIncludes(_ n: Node, mode: Mode, problems out: inout [ProfileProblem]) -> [VIP] {
        var patterns: [Node] = []
        if case .sequence = n { patterns = list(n, "include") } else { patterns = [n] }
        guard let readInclude else {
            problem(n, "`include:` needs the profile to be read from a file")
            return []
        }
        var vips: [VIP] = []
        for p in patterns {
            guard let pattern = string(p, "include") else { continue }
            for (path, text) in readInclude(pattern) {
                var sub = ProfileDecoder(file: path)
                sub.seenVIPs = seenVIPs
                vips += sub.decodeIncluded(text, mode: mode)
                seenVIPs = sub.seenVIPs
                out += sub.problems.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
            }
        }
        return vips
    }

    /// One included file: a mapping with `vips:` and nothing else.
    mutating func decodeIncluded(_ text: String?, mode: Mode) -> [VIP] {
        guard let text else {
            problems.append(
                ProfileProblem(
                    file: file, line: 0, column: 0,
                    message: "reading this included file failed: \(Self.unreadableReason(file)); fix it or remove it"))
            return []
        }
        if let bad = Self.controlCharacter(in: text) {
            problems.append(controlProblem(bad))
            return []
        }
        let root: Node?
        do { root = try compose(text) } catch {
            problems.append(yamlProblem(error, text: text))
            return []
        }
        guard let root, case .mapping = root else {
            if root != nil { problem(root, "an included file must be a YAML mapping with `vips:`") }
            return []  // an empty file adds nothing
        }
        let f = fields(root, allowed: ["vips"], context: "an included file (only `vips:` may be set here)")
        return f["vips"].map { decodeVIPs($0, mode: mode, allowEmpty: true) } ?? []
    }

    mutating func decodeVIPs(_ n: Node, mode: Mode, allowEmpty: Bool = false) -> [VIP] {
        guard case .sequence(let items, _) = n else {
            problem(n, "`vips` must be a list (`[a, b]` or one `- item` per line)")
            return []
        }
        if items.isEmpty && !allowEmpty {
            problem(n, "`vips:` is empty; list at least one VIP (to remove every VIP, run `rsagent down`)")
        }
        // Sized up front: growing these by rehashing was most of decoding a 10,000-VIP profile.
        var out: [VIP] = []
        out.reserveCapacity(items.count)
        var seen = seenVIPs
        seen.reserveCapacity(seen.count + items.count)
        defer { seenVIPs = seen }
        for item in items {
            var addrNode = item
            var services: [ServicePort] = []
            if case .mapping = item {
                let f = fields(item, allowed: ["address", "services"], context: "a VIP")
                guard let a = f["address"] else { problem(item, "this VIP has no `address:`"); continue }
                addrNode = a
                if let s = f["services"] { services = decodeServices(s) }
            }
            guard let text = string(addrNode, "VIP") else { continue }
            guard let ip = parseVIP(text, node: addrNode) else { continue }
            if let first = seen[ip] {
                let at = first.file == file ? "on line \(first.line)" : "in \(first.file) on line \(first.line)"
                problem(addrNode, "VIP \(ip) is listed twice (first \(at))"); continue
            }
            if mode == .tun && !ip.isIPv4 {
                problem(
                    addrNode,
                    "VIP \(ip) is IPv6, but LVS-Tun over tunl0 carries IPv4 only; use `mode: dr` for IPv6 VIPs")
                continue
            }
            seen[ip] = (file, addrNode.mark.line)
            out.append(VIP(address: ip, services: services))
        }
        return out
    }

    mutating func parseVIP(_ text: String, node: Node) -> IPAddress? {
        // Byte-wise split: Character search costs more than the rest of decoding together.
        var addrText = text
        var prefix: Int?
        if let slash = text.utf8.firstIndex(of: UInt8(ascii: "/")) {
            addrText = String(text[..<slash])
            prefix = Int(text[text.utf8.index(after: slash)...])
            if prefix == nil { problem(node, "VIP `\(text)` has a malformed prefix length"); return nil }
        }
        guard let ip = IPAddress(addrText) else {
            problem(node, "VIP `\(text)` is not an IPv4 or IPv6 address"); return nil
        }
        if let prefix, prefix != ip.hostPrefixLength {
            problem(
                node,
                "VIP `\(text)` must be a single address (/\(ip.hostPrefixLength)): a wider prefix on a non-ARPing device would make this host claim the whole network; write `\(ip)`"
            )
            return nil
        }
        if let why = Self.unusableVIPReason(ip) { problem(node, "VIP \(ip) \(why)"); return nil }
        return ip
    }

    /// Why an address cannot be a VIP, or nil.
    static func unusableVIPReason(_ ip: IPAddress) -> String? {
        let b0 = ip.byte(0), b1 = ip.byte(1)
        if ip.isUnspecified { return "is the unspecified address" }
        if ip.isIPv4 {
            if b0 == 127 { return "is a loopback address (127.0.0.0/8); clients cannot reach it" }
            if b0 >= 224 && b0 <= 239 { return "is a multicast address" }
            if b0 >= 240 { return "is reserved or broadcast (240.0.0.0/4)" }
            if b0 == 169 && b1 == 254 { return "is link-local (169.254.0.0/16); directors cannot route to it" }
            if b0 == 0 { return "is in 0.0.0.0/8, which is not routable" }
        } else {
            if ip.isInside(IPAddress("::1")!, prefix: 128) { return "is the loopback address ::1" }
            if b0 == 0xff { return "is a multicast address" }
            if b0 == 0xfe && b1 & 0xc0 == 0x80 { return "is link-local (fe80::/10); directors cannot route to it" }
            if ip.isInside(IPAddress("::ffff:0.0.0.0")!, prefix: 96) {
                return "is an IPv4-mapped IPv6 address; write the IPv4 address"
            }
        }
        return nil
    }

    mutating func decodeServices(_ n: Node) -> [ServicePort] {
        var out: [ServicePort] = []
        for item in list(n, "services") {
            guard let s = string(item, "service") else { continue }
            let parts = s.lowercased().split(separator: "/")
            guard parts.count == 2, let proto = ServicePort.Proto(rawValue: String(parts[0])),
                let port = Int(parts[1]), (1...65535).contains(port)
            else {
                problem(item, "service `\(s)` must be PROTO/PORT with PROTO tcp or udp and PORT 1–65535, e.g. tcp/80")
                continue
            }
            let sp = ServicePort(proto: proto, port: port)
            if out.contains(sp) { problem(item, "service \(sp) is listed twice for this VIP"); continue }
            out.append(sp)
        }
        return out
    }

    mutating func decodeLoad(_ n: Node) -> LoadSettings {
        var l = LoadSettings()
        let f = fields(
            n,
            allowed: ["http", "agent_check", "allow", "weight", "interval", "smoothing", "hysteresis", "thresholds"],
            context: "`load:`")
        if let v = f["interval"], let d = number(v, "load.interval", in: 0.1...60, unit: "seconds") { l.interval = d }
        if let v = f["smoothing"], let d = number(v, "load.smoothing", in: 0...600, unit: "seconds") { l.smoothing = d }
        if let v = f["hysteresis"], let d = number(v, "load.hysteresis", in: 0...50, unit: "points") {
            l.hysteresis = Int(d.rounded())
        }
        if let v = f["thresholds"] {
            let t = fields(v, allowed: ["cpu", "load", "memory", "connections"], context: "`load.thresholds:`")
            if let m = t["cpu"], let d = number(m, "load.thresholds.cpu", in: 1...100, unit: "percent") {
                l.thresholds.cpu = d
            }
            if let m = t["load"], let d = number(m, "load.thresholds.load", in: 0.01...1000, unit: "per CPU") {
                l.thresholds.load = d
            }
            if let m = t["memory"], let d = number(m, "load.thresholds.memory", in: 1...100, unit: "percent") {
                l.thresholds.memory = d
            }
            if let m = t["connections"], let i = int(m, "load.thresholds.connections") {
                if i >= 1 {
                    l.thresholds.connections = i
                } else {
                    problem(m, "load.thresholds.connections \(i) must be at least 1")
                }
            }
        }
        if let v = f["http"] { l.http = endpoint(v, "load.http") }
        if let v = f["agent_check"] { l.agentCheck = endpoint(v, "load.agent_check") }
        if let v = f["allow"] {
            for item in list(v, "load.allow") {
                guard let s = string(item, "load.allow entry") else { continue }
                if let c = CIDR(s) {
                    l.allow.append(c)
                } else {
                    problem(item, "load.allow entry `\(s)` is not a network such as 192.0.2.0/24 or 2001:db8::/64")
                }
            }
        }
        if let v = f["weight"] {
            let w = fields(v, allowed: ["max", "min"], context: "`load.weight:`")
            if let m = w["max"], let i = int(m, "load.weight.max") {
                if (1...100).contains(i) {
                    l.weightMax = i
                } else {
                    problem(m, "load.weight.max \(i) must be 1–100 (percent of capacity)")
                }
            }
            if let m = w["min"], let i = int(m, "load.weight.min") {
                if (0...100).contains(i) { l.weightMin = i } else { problem(m, "load.weight.min \(i) must be 0–100") }
            }
            if l.weightMin > l.weightMax {
                problem(v, "load.weight.min \(l.weightMin) is above load.weight.max \(l.weightMax)")
            }
        }
        return l
    }

    mutating func decodeTestService(_ n: Node) -> TestServiceSettings {
        var t = TestServiceSettings()
        let f = fields(n, allowed: ["port", "http_port"], context: "`test_service:`")
        if let v = f["port"], let p = port(v, "test_service.port") { t.port = p }
        if let v = f["http_port"], let p = port(v, "test_service.http_port") { t.httpPort = p }
        if let h = t.httpPort, h == t.port, let v = f["http_port"] {
            problem(v, "test_service.http_port \(h) is the same as test_service.port; give HTTP its own port (31380)")
        }
        return t
    }

    mutating func checkPortClashes(load: LoadSettings?, test: TestServiceSettings?, node: Node) {
        var used: [Int: String] = [:]
        func claim(_ port: Int?, _ what: String) {
            guard let port else { return }
            if let other = used[port] {
                problem(node, "\(what) port \(port) is also used by \(other); every listener needs its own port")
            }
            used[port] = what
        }
        claim(load?.http?.port, "load.http")
        claim(load?.agentCheck?.port, "load.agent_check")
        claim(test?.port, "test_service.port")
        claim(test?.httpPort, "test_service.http_port")
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

    // MARK: node helpers

    mutating func problem(_ node: Node?, _ message: String) {
        let m = node?.mark
        problems.append(ProfileProblem(file: file, line: m?.line ?? 1, column: m?.column ?? 1, message: message))
    }

    func controlProblem(_ c: (line: Int, column: Int, scalar: Unicode.Scalar)) -> ProfileProblem {
        let name =
            c.scalar.value == 0
            ? "a NUL byte" : "control character 0x" + String(c.scalar.value, radix: 16, uppercase: true)
        return ProfileProblem(
            file: file, line: c.line, column: c.column,
            message: "this is not a text file: \(name) here; a profile is plain UTF-8 YAML (is this the right file?)")
    }

    func yamlProblem(_ e: YAMLError, text: String) -> ProfileProblem {
        let at = e.mark
        // libyaml's wording for a tab ("cannot start any token", "violates indentation") does
        // not say "tab": say it, and what to do.
        if Self.character(in: text, line: at.line, column: at.column) == "\t" || e.problem.includes("tab") {
            return ProfileProblem(
                file: file, line: at.line, column: at.column,
                message:
                    "this is not valid YAML: a tab character here; YAML indents with spaces only, so replace the tab with spaces"
            )
        }
        return ProfileProblem(file: file, line: at.line, column: at.column, message: "this is not valid YAML: \(e)")
    }

    /// The character at a 1-based line and column, if there is one.
    static func character(in text: String, line: Int, column: Int) -> Character? {
        guard line >= 1, column >= 1 else { return nil }
        let lines = text.split(separator: "\n", maxSplits: line, omittingEmptySubsequences: false)
        guard line <= lines.count else { return nil }
        let l = lines[line - 1]
        return column <= l.count ? l[l.index(l.startIndex, offsetBy: column - 1)] : nil
    }

    /// A control character (a NUL byte, binary data) as one located problem: libyaml's own
    /// report spans several lines and quotes the unprintable byte.
    static func controlCharacter(in text: String) -> (line: Int, column: Int, scalar: Unicode.Scalar)? {
        var line = 1, column = 1
        for u in text.unicodeScalars {
            if u == "\n" { line += 1; column = 1; continue }
            if u.value < 0x20 && u != "\t" && u != "\r" || u.value == 0x7F { return (line, column, u) }
            column += 1
        }
        return nil
    }

    /// The keys of a mapping, reporting unknown and duplicate keys.
    mutating func fields(_ node: Node, allowed: [String], context: String) -> [String: Node] {
        guard case .mapping(let mapping, _) = node else {
            problem(node, "\(context) must be a mapping of `key: value` lines")
            return [:]
        }
        var out: [String: Node] = [:]
        for (k, v) in mapping {
            guard let key = k.string else { problem(k, "keys in \(context) must be plain words"); continue }
            if !allowed.contains(key) {
                var msg = "unknown key `\(key)` in \(context)"
                if let near = allowed.min(by: { editDistance($0, key) < editDistance($1, key) }),
                    editDistance(near, key) <= 2
                {
                    msg += "; did you mean `\(near)`?"
                } else {
                    msg += "; known keys: \(allowed.joined(separator: ", "))"
                }
                problem(k, msg)
                continue
            }
            if out[key] != nil { problem(k, "key `\(key)` appears twice in \(context)"); continue }
            out[key] = v
        }
        return out
    }

    mutating func list(_ node: Node, _ what: String) -> [Node] {
        switch node {
        case .sequence(let s, _): return s
        default:
            problem(node, "`\(what)` must be a list (`[a, b]` or one `- item` per line)")
            return []
        }
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let s) = node, !Self.isNull(node) else {
            problem(node, "\(what) must be a single value, not \(Self.shape(node))")
            return nil
        }
        return s.string
    }

    mutating func int(_ node: Node, _ what: String) -> Int? {
        guard case .scalar(let s) = node, let i = Int(s.string) else {
            problem(node, "\(what) must be a whole number, not \(Self.shape(node))")
            return nil
        }
        return i
    }

    /// A number (`1`, `0.5`) within `range`.
    mutating func number(_ node: Node, _ what: String, in range: ClosedRange<Double>, unit: String) -> Double? {
        guard case .scalar(let s) = node, let d = Double(s.string), d.isFinite else {
            problem(node, "\(what) must be a number, not \(Self.shape(node))")
            return nil
        }
        guard range.contains(d) else {
            problem(
                node, "\(what) \(s.string) must be \(range.lowerBound.formatted)–\(range.upperBound.formatted) \(unit)")
            return nil
        }
        return d
    }

    mutating func port(_ node: Node, _ what: String) -> Int? {
        guard let p = int(node, what) else { return nil }
        guard (1...65535).contains(p) else { problem(node, "\(what) \(p) is not a port (1–65535)"); return nil }
        return p
    }

    mutating func endpoint(_ node: Node, _ what: String) -> Endpoint? {
        guard let s = string(node, what) else { return nil }
        guard let e = Endpoint(s) else {
            problem(node, "\(what) `\(s)` must be ADDRESS:PORT, e.g. 0.0.0.0:3334 or [::]:3334")
            return nil
        }
        return e
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ what: String) -> T?
    where T.RawValue == String {
        guard let s = string(node, what) else { return nil }
        if let v = T(rawValue: s) { return v }
        problem(node, "\(what) `\(s)` is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        return nil
    }

    /// YAML's null spellings, for an unquoted scalar (the basic resolver leaves them as text).
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node else { return false }
        if s.style == .singleQuoted || s.style == .doubleQuoted { return s.string.isEmpty }
        switch s.string {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    static func shape(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s): return isNull(node) ? "empty" : "`\(s.string)`"
        }
    }
}

extension Double {
    /// `1` rather than `1.0`, for messages.
    var formatted: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var prev = Array(0...b.count)
    for i in 1...a.count {
        var cur = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return prev[b.count]
}
