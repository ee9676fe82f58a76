import Foundation
import Netlink
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// These tests change the network namespace they run in, so they run only in one that is
/// provably private: scripts/test marks its `unshare --net` process with
/// RSAGENT_PRIVATE_NETNS=1, and the namespace must hold nothing but `lo` when first looked at
/// (before any test made a link). The host's namespace has real interfaces and never qualifies.
/// (Comparing with /proc/1/ns/net is not enough: PID 1 may be unreadable, as in sandboxes.)
enum PrivateNamespace {
    static let isPrivate: Bool = {
        guard getuid() == 0, ProcessInfo.processInfo.environment["RSAGENT_PRIVATE_NETNS"] == "1" else { return false }
        guard let links = try? RouteSocket().links() else { return false }
        return links.map(\.name) == ["lo"]
    }()
    static let reason: Comment =
        "needs root in a fresh network namespace holding only lo (scripts/test runs them under `unshare --net`)"

    static func ip(_ args: String) throws {
        let argv = (["/usr/sbin/ip"] + args.split(separator: " ").map(String.init)).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/usr/sbin/ip", nil, nil, argv, nil) == 0 else {
            throw NetlinkError(operation: "spawn ip", errno: errno)
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        if status != 0 { throw NetlinkError(operation: "ip \(args)", errno: 0) }
    }
}

@Suite(.enabled(if: PrivateNamespace.isPrivate, PrivateNamespace.reason), .serialized)
struct NetlinkTests {
    init() throws {
        // A fresh link per test: rtnetlink state of this process's own namespace.
        try? PrivateNamespace.ip("link del nlt0")
        try PrivateNamespace.ip("link set lo up")
        try PrivateNamespace.ip("link add nlt0 type veth peer name nlt1")
        try PrivateNamespace.ip("addr add 10.77.0.2/24 dev nlt0")
        try PrivateNamespace.ip("link set nlt0 up")
        try PrivateNamespace.ip("link set nlt1 up")
    }
    // Each test starts by deleting the previous test's veth pair; the namespace itself dies with
    // the test process.

    func link(_ s: RouteSocket, _ name: String) throws -> Link {
        try #require(try s.links().first { $0.name == name })
    }

    /// A dump read while another program changes the list is flagged inconsistent by the kernel
    /// (NLM_F_DUMP_INTR, libnl's "Dump inconsistency detected"); rsagent reads it again instead
    /// of failing. Seen as a failed `apply` while a second one added 1,000 VIPs.
    @Test func aDumpInterruptedByChangesIsReadAgain() throws {
        let s = try RouteSocket()
        let lo = try link(s, "lo")
        let base = (0..<1500).map {
            AddressRequest(index: lo.index, device: "lo", address: IPAddress("198.19.\($0 / 250).\($0 % 250 + 1)")!)
        }
        for r in base { try s.addAddress(r) }
        defer { for r in base { try? s.deleteAddress(r) } }
        // Another program adds 1,000 addresses, then removes them, while this one dumps.
        let done = Counter()
        let writer = Thread {
            defer { done.bump() }
            guard let w = try? RouteSocket() else { return }
            let churn = (0..<1000).map {
                AddressRequest(index: lo.index, device: "lo", address: IPAddress("198.18.\($0 / 250).\($0 % 250 + 1)")!)
            }
            for r in churn { try? w.addAddress(r) }
            for r in churn { try? w.deleteAddress(r) }
        }
        writer.start()
        var dumps = 0
        while done.value == 0 {
            let all = try s.addresses()
            #expect(all.filter { $0.address.description.hasPrefix("198.19.") }.count == 1500)
            dumps += 1
        }
        #expect(dumps >= 1)
    }

    @Test func addressCarriesTheOwnerMarkAndIPv6IsNotTentative() throws {
        let s = try RouteSocket()
        let lo = try link(s, "lo")
        let v4 = AddressRequest(index: lo.index, device: "lo", address: IPAddress("192.0.2.77")!, label: "lo:rs")
        let v6 = AddressRequest(index: lo.index, device: "lo", address: IPAddress("2001:db8::77")!)
        try s.addAddress(v4)
        try s.addAddress(v6)
        defer { try? s.deleteAddress(v4); try? s.deleteAddress(v6) }
        let dumped = try s.addresses()
        let a4 = try #require(dumped.first { $0.address == v4.address })
        let a6 = try #require(dumped.first { $0.address == v6.address })
        #expect(a4.isOwned && a4.proto == rsagentAddressProtocol && a4.label == "lo:rs" && a4.prefixLength == 32)
        #expect(a6.isOwned && a6.prefixLength == 128 && !a6.isTentative)
        #expect(dumped.first { $0.address == IPAddress("10.77.0.2") }?.isOwned == false)
    }

    @Test func kernelRefusalsKeepErrnoAndExtack() throws {
        let s = try RouteSocket()
        let lo = try link(s, "lo")
        let r = AddressRequest(index: lo.index, device: "lo", address: IPAddress("192.0.2.78")!)
        try s.addAddress(r)
        defer { try? s.deleteAddress(r) }
        do { try s.addAddress(r); Issue.record("second add succeeded") } catch let e as NetlinkError {
            #expect(e.errno == EEXIST)
            #expect(e.operation == "ip addr add 192.0.2.78/32 dev lo")
            #expect(e.extack?.contains("Address already assigned") == true)
        }
        try s.deleteAddress(r)
        do { try s.deleteAddress(r); Issue.record("second delete succeeded") } catch let e as NetlinkError {
            #expect(e.errno == EADDRNOTAVAIL)
        }
        do {
            try s.createLink(name: "rsnl-x", kind: "no-such-kind"); Issue.record("bogus link kind accepted")
        } catch let e as NetlinkError {
            #expect(e.errno == EOPNOTSUPP)
            #expect(e.extack == "Unknown device type")
        }
    }

    @Test func replaceUpdatesTheMarkInPlace() throws {
        let s = try RouteSocket()
        let lo = try link(s, "lo")
        let foreign = AddressRequest(index: lo.index, device: "lo", address: IPAddress("2001:db8::79")!, proto: 0)
        try s.addAddress(foreign)
        var owned = foreign
        owned.proto = rsagentAddressProtocol
        defer { try? s.deleteAddress(owned) }
        #expect(try s.addresses().first { $0.address == foreign.address }?.isOwned == false)
        try s.replaceAddress(owned)
        #expect(try s.addresses().first { $0.address == foreign.address }?.isOwned == true)
    }

    @Test func linkUpDownAndAlias() throws {
        let s = try RouteSocket()
        let l = try link(s, "nlt1")
        try s.setLink(l.index, name: "nlt1", up: false, alias: "rsagent test")
        let after = try link(s, "nlt1")
        #expect(!after.isUp && after.alias == "rsagent test" && after.kind == "veth")
        try s.setLink(l.index, name: "nlt1", up: true)
        #expect(try link(s, "nlt1").isUp)
        try s.deleteLink(l.index, name: "nlt1")
        #expect(try s.links().first { $0.name == "nlt0" || $0.name == "nlt1" } == nil)
    }

    /// The default route's interface, lowest metric first, found among the local table's
    /// routes; and the socket still answers the next request (libnl's sequence numbers in step).
    @Test func defaultRouteInterfaceIsTheLowestMetricDefault() throws {
        let s = try RouteSocket()
        let nlt0 = try link(s, "nlt0"), nlt1 = try link(s, "nlt1")
        try PrivateNamespace.ip("addr add 10.78.0.2/24 dev nlt1")
        #expect(try s.defaultRouteInterface(family: AF_INET) == nil)
        try PrivateNamespace.ip("route add default via 10.78.0.1 dev nlt1 metric 20")
        try PrivateNamespace.ip("route add default via 10.77.0.1 dev nlt0 metric 10")
        // An address in the documentation range a route-get probe would have used.
        try PrivateNamespace.ip("addr add 198.51.100.1/24 dev nlt1")
        #expect(try s.defaultRouteInterface(family: AF_INET) == nlt0.index)
        #expect(try s.links().contains { $0.name == "nlt0" })
        #expect(try s.addresses().contains { $0.address == IPAddress("198.51.100.1") })
        try PrivateNamespace.ip("route del default via 10.77.0.1 dev nlt0 metric 10")
        #expect(try s.defaultRouteInterface(family: AF_INET) == nlt1.index)
        try PrivateNamespace.ip("route del default via 10.78.0.1 dev nlt1 metric 20")
    }

    @Test func routeGetAnswersLikeIpRouteGet() throws {
        let s = try RouteSocket()
        let nlt0 = try link(s, "nlt0")
        let lo = try link(s, "lo")
        try PrivateNamespace.ip("route replace default via 10.77.0.1 dev nlt0")
        let vip = AddressRequest(index: lo.index, device: "lo", address: IPAddress("192.0.2.80")!)
        try s.addAddress(vip)
        defer { try? s.deleteAddress(vip) }

        let out = try s.routeGet(RouteQuery(to: IPAddress("198.51.100.9")!))
        #expect(out.kind == .unicast && out.oif == nlt0.index && out.gateway == IPAddress("10.77.0.1"))
        #expect(out.preferredSource == IPAddress("10.77.0.2"))

        let local = try s.routeGet(RouteQuery(to: vip.address, from: IPAddress("203.0.113.5")!, iif: nlt0.index))
        #expect(local.kind == .local && local.oif == lo.index)

        // The LVS-DR reply path: from the VIP to a client leaves by the real interface.
        let reply = try s.routeGet(RouteQuery(to: IPAddress("203.0.113.5")!, from: vip.address))
        #expect(reply.kind == .unicast && reply.oif == nlt0.index)

        // Strict reverse-path filtering on the arriving interface, reverse route elsewhere.
        let lt = try link(s, "nlt1")
        try PrivateNamespace.ip("addr add 10.78.0.2/24 dev nlt1")
        try writeSysctl("net/ipv4/conf/nlt1/rp_filter", "1")
        defer { try? writeSysctl("net/ipv4/conf/nlt1/rp_filter", "0") }
        do {
            _ = try s.routeGet(RouteQuery(to: vip.address, from: IPAddress("203.0.113.5")!, iif: lt.index))
            Issue.record("strict rp_filter did not reject")
        } catch let e as NetlinkError {
            #expect(e.errno == EINVAL || e.errno == EXDEV, "\(e)")
        }
        try writeSysctl("net/ipv4/conf/nlt1/rp_filter", "2")
        #expect(
            try s.routeGet(RouteQuery(to: vip.address, from: IPAddress("203.0.113.5")!, iif: lt.index)).kind == .local)

        try PrivateNamespace.ip("route del default")
        do {
            _ = try s.routeGet(RouteQuery(to: IPAddress("198.51.100.9")!)); Issue.record("no route, yet an answer")
        } catch let e as NetlinkError {
            #expect(e.errno == ENETUNREACH)
            #expect(e.libnlCode != 0)
        }
    }

    func writeSysctl(_ path: String, _ value: String) throws {
        try (value + "\n").write(toFile: "/proc/sys/" + path, atomically: false, encoding: .utf8)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.withLock { n } }
    func bump() { lock.withLock { n += 1 } }
}
