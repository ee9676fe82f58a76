import Foundation
import Netlink
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension NetlinkTests {
    /// Nested in `NetlinkTests` so that its `.serialized` covers these too: they share this
    /// process's namespace, and another test's changes would show up as events here.
    @Suite struct Events {
        /// Collects events until `match` holds or two seconds pass.
        func firstEvent(_ events: EventSocket, _ match: (NetlinkEvent) -> Bool) throws -> NetlinkEvent? {
            let deadline = Date().addingTimeInterval(2)
            while Date() < deadline {
                if let e = try events.wait(timeout: 0.2).first(where: match) { return e }
            }
            return nil
        }

        @Test func addressAndLinkAndNetconfChangesArrive() throws {
            try? PrivateNamespace.ip("link del nle0")
            try PrivateNamespace.ip("link add nle0 type veth peer name nle1")
            try PrivateNamespace.ip("link set nle0 up")
            let events = try EventSocket()
            let s = try RouteSocket()
            let dev = try #require(try s.links().first { $0.name == "nle0" })
            let r = AddressRequest(index: dev.index, device: "nle0", address: IPAddress("192.0.2.90")!)
            try s.addAddress(r)
            let added = try firstEvent(events) {
                if case .addressAdded(let a) = $0 { a.address == r.address } else { false }
            }
            guard case .addressAdded(let a)? = added else { Issue.record("no RTM_NEWADDR"); return }
            #expect(a.isOwned && a.index == dev.index)

            try s.deleteAddress(r)
            let removed = try firstEvent(events) {
                if case .addressRemoved(let a, _) = $0 { a.address == r.address } else { false }
            }
            // The port id of our own RouteSocket: the kernel names the requester.
            guard case .addressRemoved(_, let by)? = removed else { Issue.record("no RTM_DELADDR"); return }
            #expect(by == s.localPort && by != 0, "\(by) \(s.localPort)")

            try s.setLink(dev.index, name: "nle0", up: false)
            #expect(
                try firstEvent(events) { $0 == .link(index: dev.index, name: "nle0", isUp: false, removed: false) }
                    != nil)

            try "2\n".write(toFile: "/proc/sys/net/ipv4/conf/nle0/rp_filter", atomically: false, encoding: .utf8)
            #expect(try firstEvent(events) { $0 == .netconf(index: dev.index.rawValue, rpFilter: 2) } != nil)

            try s.deleteLink(dev.index, name: "nle0")
            #expect(try firstEvent(events) { if case .link(dev.index, _, _, true) = $0 { true } else { false } } != nil)
        }

        @Test func anOverflowIsReportedAsOverrun() throws {
            try? PrivateNamespace.ip("link del nle0")
            try PrivateNamespace.ip("link add nle0 type veth peer name nle1")
            let events = try EventSocket(receiveBuffer: 2048)  // the kernel's minimum is about 2.3 kB
            let s = try RouteSocket()
            let dev = try #require(try s.links().first { $0.name == "nle0" })
            for i in 1...200 {
                try s.addAddress(AddressRequest(index: dev.index, device: "nle0", address: IPAddress("198.18.1.\(i)")!))
            }
            let seen = try events.drain()
            #expect(seen.contains(.overrun))
            #expect(seen.count < 200)
            try s.deleteLink(dev.index, name: "nle0")
        }

        @Test func timeoutReturnsNothing() throws {
            let events = try EventSocket()
            _ = try events.drain()
            let start = Date()
            #expect(try events.wait(timeout: 0.2).isEmpty)
            #expect(Date().timeIntervalSince(start) >= 0.15)
        }
    }
}
