import Foundation
import Netlink
import Testing

@testable import RSAgent

#if canImport(Glibc)
    import Glibc
#endif

/// `tunnel.mss`: the clamp's values, its nftables table, and its planning; and, in a private
/// namespace, that a SYN-ACK from a VIP really carries the clamped MSS.
struct MSSClampTests {
    let gue = """
        mode: tun
        device: lo
        tunnel: { type: gue, port: 6080, mss: auto }
        vips: [192.0.2.110, 192.0.2.111, '2001:db8::110']

        """

    @Test func autoTakesTheFacingMTULessTheTunnelAndTheHeaders() throws {
        let r = try #require(MSSRuleset(profile(gue), facingMTU: 1500))
        // GUE over IPv4: 20 + 8 + 4 bytes; then the inner IPv4 (20) or IPv6 (40) and TCP (20).
        #expect(r.ipv4?.mss == 1428 && r.ipv6?.mss == 1408)
        #expect(r.ipv4?.vips.map(\.description) == ["192.0.2.110", "192.0.2.111"])
        #expect(r.comment.hasPrefix("rsagent: owned, do not edit; mss ipv4 1428 (2 VIPs), ipv6 1408 (1 VIP); "))
        #expect(
            r.commands.contains(
                "ip saddr { 192.0.2.110, 192.0.2.111 } tcp flags & (syn | ack) == (syn | ack) tcp option maxseg size > 1428 tcp option maxseg size set 1428"
            ))
        #expect(r.commands.hasPrefix("table inet rsagent\ndelete table inet rsagent\n"), "one transaction replaces it")
        // Another VIP is another digest; a fixed size is taken as it is; off is no table.
        let more = try #require(
            MSSRuleset(profile(gue.replacingOccurrences(of: "192.0.2.111", with: "192.0.2.112")), facingMTU: 1500))
        #expect(more.comment != r.comment)
        let fixed = try #require(
            MSSRuleset(profile(gue.replacingOccurrences(of: "mss: auto", with: "mss: 1300")), facingMTU: nil))
        #expect(fixed.ipv4?.mss == 1300 && fixed.ipv6?.mss == 1300)
        #expect(
            MSSRuleset(profile(gue.replacingOccurrences(of: "mss: auto", with: "mss: off")), facingMTU: 1500) == nil)
        #expect(MSSRuleset(profile(gue), facingMTU: nil) == nil, "auto without a facing MTU: nothing to go by")
    }

    @Test func theClampIsPlannedReplacedAndUndone() throws {
        let fake = FakeHost(sampleHost())
        fake.state.links.append(
            Link(index: .init(rawValue: 20), name: "tunl0", kind: "ipip", isUp: true, isNoARP: true))
        for n in SysctlName.allCases { fake.state.sysctls[SysctlKey("tunl0", n)] = 0 }
        fake.state.fouPorts = [FOUPort(port: 6080, family: .ipv4)]
        let p = profile(gue)
        let plan = Planner.plan(p, host: fake.state, state: AgentState())
        let wanted = try #require(MSSRuleset(p, facingMTU: fake.state.link(named: "eth0")?.mtu))
        #expect(plan.actions.contains(.setMSSClamp(wanted)))
        let store = StateStore(directory: NSTemporaryDirectory() + "rsagent-test-\(UUID().uuidString)")
        defer { store.clear() }
        let ex = Executor(host: fake, store: store, state: AgentState())
        #expect(ex.apply(plan.actions).outcome == .converged)
        #expect(MSSRuleset.owned(in: fake.state.nftTables)?.comment == wanted.comment)
        #expect(!Planner.plan(p, host: fake.state, state: ex.state).actions.contains { $0.kind.hasSuffix("mss_clamp") })
        // mss: off removes it; down removes it.
        let off = profile(gue.replacingOccurrences(of: "mss: auto", with: "mss: off"))
        #expect(Planner.plan(off, host: fake.state, state: ex.state).actions.contains(.removeMSSClamp))
        #expect(Planner.planDown(host: fake.state, state: ex.state).actions.contains(.removeMSSClamp))
        // A table of that name that is not rsagent's is never replaced.
        fake.state.nftTables = [NFTable(name: "rsagent", comment: "someone else's")]
        #expect(Planner.plan(p, host: fake.state, state: ex.state).conflicts.map(\.id) == ["mss.foreign"])
        #expect(!Planner.planDown(host: fake.state, state: ex.state).actions.contains(.removeMSSClamp))
    }

    /// The kernel's own answer: a connection to a VIP gets the clamped MSS from its SYN-ACK
    /// (TCP_MAXSEG on the client), and the full one once the table is gone. On a thread of its
    /// own in a network namespace of its own: nothing else sees the VIP or the table.
    @Test(.enabled(if: getuid() == 0 && (try? NFTables()) != nil, "needs root and libnftables1"))
    func aSynAckFromTheVIPCarriesTheClampedMSS() throws {
        let p = profile("mode: tun\ndevice: lo\ntunnel: { mss: 1000 }\nvips: [192.0.2.150]\n")
        let r = try #require(MSSRuleset(p, facingMTU: nil))
        // #expect belongs to the test's task: the thread only gathers what the kernel said.
        let seen = try inFreshNetworkNamespace { () -> [String] in
            let host = try KernelHost()
            try host.setLink(name: "lo", up: true)
            try host.addAddress(IPAddress("192.0.2.150")!, prefix: 32, device: "lo", replace: false)
            var out = ["mss \(try clientMSS(to: "192.0.2.150"))"]
            try host.replaceMSSClamp(r)
            out.append(MSSRuleset.owned(in: try NFTables.inetTables())?.comment ?? "no table")
            out.append("mss \(try clientMSS(to: "192.0.2.150"))")
            try host.removeMSSClamp()
            out.append(MSSRuleset.owned(in: try NFTables.inetTables())?.comment ?? "no table")
            out.append("mss \(try clientMSS(to: "192.0.2.150"))")
            return out
        }
        let mss = seen.filter { $0.hasPrefix("mss ") }.compactMap { Int($0.dropFirst(4)) }
        #expect(mss.count == 3 && mss[0] > 1000 && mss[1] <= 1000 && mss[2] > 1000, "\(seen)")
        #expect(seen[1] == r.comment && seen[3] == "no table", "\(seen)")
    }
}

private final class ResultBox<T>: @unchecked Sendable { var result: Result<T, any Error>? }

/// Runs `body` on a new thread moved into a new network namespace (only that thread is).
private func inFreshNetworkNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        defer { done.signal() }
        box.result = Result {
            guard ThreadNamespace.unshareNew(ThreadNamespace.network) else {
                throw SystemError.current("unshare(CLONE_NEWNET)")
            }
            return try body()
        }
    }
    thread.start()
    done.wait()
    return try box.result!.get()
}

/// The client's MSS after connecting to `address` (a listener bound there for the test, on a
/// port the kernel picks: a fixed one was once still held by the previous call's connection).
private func clientMSS(to address: String) throws -> Int32 {
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_port = 0
    inet_pton(AF_INET, address, &sa.sin_addr)
    let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(server) }
    var one: Int32 = 1
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    let bound = withUnsafePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    var size = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(server, $0, &size) }
    }
    guard bound == 0, named == 0, listen(server, 4) == 0 else {
        throw SystemError.current("listening on \(address)")
    }
    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(client) }
    let connected = withUnsafePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        throw SystemError.current("connecting to \(address):\(UInt16(bigEndian: sa.sin_port))")
    }
    var mss: Int32 = 0
    var len = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(client, Int32(IPPROTO_TCP), TCP_MAXSEG, &mss, &len)
    return mss
}
