import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// `rsagent check --json` (schema `rsagent.check/1`).
public struct CheckReport: Codable, Sendable, CommandReport {
    public var schema = "rsagent.check/1"
    public var profile: String
    public var clients: [String]
    public var findings: [Finding]
    public var failures: Int { findings.filter { $0.verdict == .fail }.count }
    public var exitCode: Int32 { failures > 0 ? 1 : 0 }
}

extension KernelHost {
    /// Route-get for the checks: the answer, or the kernel's refusal by errno.
    func routeAnswer(_ q: RouteQuery) -> RouteAnswer {
        do { return .route(try socket.routeGet(q)) } catch let e as NetlinkError {
            return .refused(errno: e.errno, text: e.reason)
        } catch { return .refused(errno: 0, text: "\(error)") }
    }

    /// The default route's gateway, if any (`ip route get 198.51.100.1`).
    func defaultGateway() -> IPAddress? {
        (try? socket.routeGet(RouteQuery(to: IPAddress("198.51.100.1")!)))?.gateway
    }
}

extension Operations {
    /// Reads the host and runs the checks. Clients default to a documentation address outside
    /// every local network (IPv4, and IPv6 when there are IPv6 VIPs) and the default gateway.
    public static func check(profile: Profile, path: String, host: KernelHost, clients given: [IPAddress]) throws
        -> CheckReport
    {
        let h = try host.observe()
        let interfaces = Planner.plan(profile, host: h, state: AgentState()).interfaces
        var clients = given
        if clients.isEmpty {
            let local = h.addresses
            let far = ["203.0.113.77", "2001:db8:ffff::77"].compactMap(IPAddress.init).filter { c in
                !local.contains { c.isInside($0.address, prefix: $0.prefixLength) }
                    && (c.isIPv4 || profile.vips.contains { !$0.address.isIPv4 })
            }
            clients = far + (host.defaultGateway().map { [$0] } ?? [])
        }
        var routes: [RouteQuery: RouteAnswer] = [:]
        for q in Checks.queries(profile, host: h, interfaces: interfaces, clients: clients) {
            routes[q] = host.routeAnswer(q)
        }
        let listeners = profile.vips.contains { !$0.services.isEmpty } ? try SocketDiagnostics().listeners() : []
        let o = CheckObservation(
            host: h, interfaces: interfaces, clients: clients, routes: routes, listeners: listeners)
        // Fixes are meant to be pasted: name the real profile.
        let findings =
            (Checks.run(profile, o) + Checks.clients(profile, given: given, used: clients)
            + Checks.managers(profile, observeManagers(device: profile.deviceName)))
            .map { f in
                var f = f
                f.fix = f.fix.replacingAll("-c PROFILE", with: "-c \(path)")
                return f
            }
        return CheckReport(
            profile: path, clients: clients.map(\.description),
            findings: findings.sorted { ($0.verdict, $0.id) < ($1.verdict, $1.id) })
    }
}

extension CheckReport {
    /// Failures first, then warnings, then passes; each with its evidence and fix.
    public func renderText() -> String {
        var out = Style.bold("rsagent check") + " — \(profile) (clients: \(clients.joined(separator: ", ")))\n"
        for verdict in [Finding.Verdict.fail, .warn, .pass] {
            let group = findings.filter { $0.verdict == verdict }
            guard !group.isEmpty else { continue }
            let title =
                switch verdict {
                case .fail: Style.red("FAIL")
                case .warn: Style.yellow("WARN")
                case .pass: Style.green("PASS")
                }
            out += "\n\(title) (\(group.count))\n"
            for f in group {
                out += "  [\(f.id)] \(f.summary)\n"
                if verdict != .pass {
                    out += "      evidence: \(f.evidence)\n"
                    if !f.fix.isEmpty { out += "      fix:      \(f.fix)\n" }
                }
            }
        }
        out += failures == 0 ? "\nno failures\n" : "\n\(failures) failure(s)\n"
        return out
    }
}

/// Which network managers run (by process name) and what their configuration says.
func observeManagers(device: String) -> ManagerObservation {
    var m = ManagerObservation()
    for pid in directoryEntries("/proc") where pid.allSatisfy(\.isNumber) {
        switch readTextFile("/proc/\(pid)/comm")?.trimmed {
        case "systemd-network": m.networkdRunning = true  // comm is cut at 15 characters
        case "NetworkManager": m.networkManagerRunning = true
        default: break
        }
    }
    func files(_ dirs: [String], suffix: String) -> [String] {
        dirs.flatMap { d in
            directoryEntries(d).filter { $0.hasSuffix(suffix) }.compactMap {
                readTextFile(d + "/" + $0)
            }
        }
    }
    if m.networkdRunning {
        m.networkdKeepsConfiguration = files(
            ["/etc/systemd/network", "/run/systemd/network", "/usr/lib/systemd/network"], suffix: ".network"
        ).contains { text in
            text.split(separator: "\n").contains { line in
                let l = line.replacingAll(" ", with: "").lowercased()
                return l.hasPrefix("keepconfiguration=") && !l.hasSuffix("=no") && !l.hasSuffix("=false")
            }
        }
    }
    if m.networkManagerRunning {
        let confs =
            files(["/etc/NetworkManager/conf.d", "/usr/lib/NetworkManager/conf.d"], suffix: ".conf")
            + [readTextFile("/etc/NetworkManager/NetworkManager.conf") ?? ""]
        m.networkManagerIgnoresVIPDevice = confs.contains {
            $0.includes("unmanaged-devices") && $0.includes("interface-name:\(device)")
        }
    }
    return m
}
