import Testing

@testable import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// The `fou` generic-netlink requests, byte for byte as the kernel reads them
/// (include/uapi/linux/fou.h, genetlink.h): a netlink header whose type is the family id, the
/// generic header (command, version 1), then the port (big-endian), the address family and the
/// encapsulation (GUE = 2), each attribute padded to 4 bytes.
struct FOUTests {
    @Test func addDeleteRequestsAreTheKernelsBytes() {
        let add = FOUSocket.requestBytes(.add, family: 0x1c, FOUReceivePort(port: 6080, ipv6: false))
        #expect(
            add == [
                0x2c, 0, 0, 0, 0x1c, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // len 44, type, REQUEST|ACK, seq, pid
                0x01, 0x01, 0, 0,  // FOU_CMD_ADD, version 1
                0x06, 0, 0x01, 0, 0x17, 0xc0, 0, 0,  // FOU_ATTR_PORT 6080, big-endian
                0x05, 0, 0x02, 0, 0x02, 0, 0, 0,  // FOU_ATTR_AF AF_INET
                0x05, 0, 0x04, 0, 0x02, 0, 0, 0,  // FOU_ATTR_TYPE FOU_ENCAP_GUE
            ])
        let del = FOUSocket.requestBytes(.delete, family: 0x1c, FOUReceivePort(port: 6080, ipv6: true))
        #expect(
            del == [
                0x24, 0, 0, 0, 0x1c, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0x02, 0x01, 0, 0,  // FOU_CMD_DEL
                0x06, 0, 0x01, 0, 0x17, 0xc0, 0, 0,
                0x05, 0, 0x02, 0, 0x0a, 0, 0, 0,  // AF_INET6
            ])
        #expect(FOUSocket.command(.add, FOUReceivePort(port: 6080, ipv6: true)) == "ip -6 fou add port 6080 gue")
    }

    /// Where the kernel has no fou module (this development machine), finding the family
    /// fails with the kernel's ENOENT, naming the module; where it has one, a port can be added,
    /// listed and deleted (in a private namespace only).
    @Test func theFamilyIsFoundOrItsAbsenceNamed() throws {
        do {
            let fou = try FOUSocket()
            guard PrivateNamespace.isPrivate else { return }
            let p = FOUReceivePort(port: 6080, ipv6: false)
            try fou.add(p)
            #expect(try fou.ports().contains(p))
            try fou.delete(p)
            #expect(!(try fou.ports().contains(p)))
        } catch let e as NetlinkError {
            #expect(e.errno == ENOENT && e.operation.contains("fou module"), "\(e)")
        }
    }
}
