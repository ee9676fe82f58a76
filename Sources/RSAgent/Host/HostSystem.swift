import Netlink

/// Everything the executor and status need from the machine. `KernelHost` is the real one;
/// tests use an in-memory fake so the executor's rollback is checked without root.
public protocol HostSystem: AnyObject {
    /// Links, addresses, the default route's interface, and the managed sysctls of `all` and
    /// every link.
    func observe() throws -> HostState
    func createDevice(name: String, kind: String) throws
    func deleteDevice(name: String) throws
    func setLink(name: String, up: Bool) throws
    func setAlias(name: String, alias: String) throws
    /// Makes sure the fallback tunnel device `name` of `kind` exists (loading its module);
    /// true when rsagent had to create it itself.
    func ensureTunnelDevice(name: String, kind: String) throws -> Bool
    /// `ip link add NAME type gre|ip6gre dev LINK [icsum]`.
    func createOwnTunnel(_ tunnel: OwnTunnel) throws
    /// `ip -6 tunnel change NAME mode …` (`proto`: 0 any, 4 ip4ip6, 41 ip6ip6).
    func setTunnelMode(name: String, proto: Int) throws
    /// `ip [-6] fou add port N gue` (EEXIST: already there, not an error).
    func addFOUPort(_ port: FOUPort) throws
    /// `ip [-6] fou del port N` (ENOENT: already gone, not an error).
    func deleteFOUPort(_ port: FOUPort) throws
    /// Replaces rsagent's nftables table with `ruleset` (one transaction).
    func replaceMSSClamp(_ ruleset: MSSRuleset) throws
    /// Deletes rsagent's nftables table (already gone: not an error).
    func removeMSSClamp() throws
    /// Adds with rsagent's mark; `replace` re-marks an existing address in place (no gap).
    func addAddress(_ ip: IPAddress, prefix: Int, device: String, replace: Bool) throws
    func deleteAddress(_ ip: IPAddress, prefix: Int, device: String) throws
    func readSysctl(_ key: SysctlKey) throws -> Int?
    func writeSysctl(_ key: SysctlKey, _ value: Int) throws
}
