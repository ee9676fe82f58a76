import Netlink

@testable import RSAgent

/// A realserver as the planner sees it: lo (up), eth0 with the RIP and the default route.
func sampleHost(loUp: Bool = true, extra: [Address] = [], sysctls: [SysctlKey: Int] = [:]) -> HostState {
    let lo = Link(index: .init(rawValue: 1), name: "lo", isUp: loUp, isLoopback: true, isNoARP: true, mtu: 65536)
    let eth0 = Link(index: .init(rawValue: 2), name: "eth0", kind: nil, isUp: true)
    var s: [SysctlKey: Int] = [:]
    for i in ["all", "lo", "eth0"] { for n in SysctlName.allCases { s[SysctlKey(i, n)] = 0 } }
    s.merge(sysctls) { _, new in new }
    return HostState(
        links: [lo, eth0],
        addresses: [
            Address(index: .init(rawValue: 1), address: IPAddress("127.0.0.1")!, prefixLength: 8),
            Address(index: .init(rawValue: 2), address: IPAddress("10.0.0.5")!, prefixLength: 24),
        ] + extra,
        sysctls: s, defaultRouteInterface: "eth0")
}

func owned(_ ip: String, on index: Int32 = 1) -> Address {
    Address(
        index: .init(rawValue: index), address: IPAddress(ip)!, prefixLength: IPAddress(ip)!.hostPrefixLength,
        proto: rsagentAddressProtocol)
}

func foreign(_ ip: String, on index: Int32 = 1, prefix: Int? = nil) -> Address {
    Address(
        index: .init(rawValue: index), address: IPAddress(ip)!, prefixLength: prefix ?? IPAddress(ip)!.hostPrefixLength)
}

func profile(_ yaml: String) -> Profile {
    try! ProfileDecoder.decode(yaml)
}

/// An in-memory host: applies actions to a `HostState`, and can be told to fail an operation.
final class FakeHost: HostSystem {
    var state: HostState
    var failOn: (String) -> Bool = { _ in false }
    var log: [String] = []
    init(_ state: HostState) { self.state = state }

    func check(_ op: String) throws {
        log.append(op)
        if failOn(op) { throw SystemError(operation: op, errno: 1, reason: "Operation not permitted") }
    }
    func observe() throws -> HostState { state }
    func index(_ name: String) -> InterfaceIndex { state.link(named: name)!.index }
    func createDevice(name: String, kind: String) throws {
        try check("create \(name)")
        let i = (state.links.map(\.index.rawValue).max() ?? 0) + 1
        state.links.append(Link(index: .init(rawValue: i), name: name, kind: kind, isUp: false, isNoARP: true))
    }
    func deleteDevice(name: String) throws {
        try check("delete \(name)")
        let i = index(name)
        state.links.removeAll { $0.name == name }
        state.addresses.removeAll { $0.index == i }
    }
    func setLink(name: String, up: Bool) throws {
        try check("link \(name) \(up ? "up" : "down")")
        let i = state.links.firstIndex { $0.name == name }!
        state.links[i].isUp = up
    }
    func setAlias(name: String, alias: String) throws {
        try check("alias \(name)")
        let i = state.links.firstIndex { $0.name == name }!
        state.links[i].alias = alias
    }
    /// As the kernel does: loading a tunnel module makes its fallback device when it is not
    /// there; true when it was made.
    func ensureTunnelDevice(name: String, kind: String) throws -> Bool {
        try check("modprobe \(kind)")
        if state.link(named: name) != nil { return false }
        let i = max(99, (state.links.map(\.index.rawValue).max() ?? 0) + 1)
        var l = Link(index: .init(rawValue: i), name: name, kind: kind, isUp: false, isNoARP: true)
        if kind == "ip6tnl" { l.tunnel = TunnelParameters(proto: DecapDevice.ip6ip6Mode) }
        state.links.append(l)
        for n in SysctlName.allCases { state.sysctls[SysctlKey(name, n)] = 0 }
        return true
    }
    func createOwnTunnel(_ t: OwnTunnel) throws {
        try check("create \(t.name)")
        let i = max(99, (state.links.map(\.index.rawValue).max() ?? 0) + 1)
        var l = Link(index: .init(rawValue: i), name: t.name, kind: t.kind, isUp: false, isNoARP: true)
        l.tunnel = TunnelParameters(link: index(t.link).rawValue, inputChecksum: t.checksums)
        state.links.append(l)
        for n in SysctlName.allCases { state.sysctls[SysctlKey(t.name, n)] = 0 }
    }
    func setTunnelMode(name: String, proto: Int) throws {
        try check("mode \(name) \(proto)")
        let i = state.links.firstIndex { $0.name == name }!
        state.links[i].tunnel = TunnelParameters(proto: proto)
    }
    func addFOUPort(_ port: FOUPort) throws {
        try check("fou add \(port.port) \(port.family)")
        state.fouPorts.insert(port)
    }
    func deleteFOUPort(_ port: FOUPort) throws {
        try check("fou del \(port.port) \(port.family)")
        state.fouPorts.remove(port)
    }
    func replaceMSSClamp(_ ruleset: MSSRuleset) throws {
        try check("nft replace \(MSSRuleset.table)")
        state.nftTables.removeAll { $0.name == MSSRuleset.table }
        state.nftTables.append(NFTable(name: MSSRuleset.table, comment: ruleset.comment))
    }
    func removeMSSClamp() throws {
        try check("nft delete \(MSSRuleset.table)")
        state.nftTables.removeAll { $0.name == MSSRuleset.table }
    }
    func addAddress(_ ip: IPAddress, prefix: Int, device: String, replace: Bool) throws {
        try check("add \(ip) \(device)")
        let i = index(device)
        state.addresses.removeAll { $0.address == ip && $0.index == i }
        state.addresses.append(Address(index: i, address: ip, prefixLength: prefix, proto: rsagentAddressProtocol))
    }
    func deleteAddress(_ ip: IPAddress, prefix: Int, device: String) throws {
        try check("del \(ip) \(device)")
        let i = index(device)
        state.addresses.removeAll { $0.address == ip && $0.index == i }
    }
    func readSysctl(_ key: SysctlKey) throws -> Int? { state.sysctls[key] }
    func writeSysctl(_ key: SysctlKey, _ value: Int) throws {
        try check("sysctl \(key)=\(value)")
        state.sysctls[key] = value
    }
}
