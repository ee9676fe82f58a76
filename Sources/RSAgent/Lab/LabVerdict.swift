#if canImport(Glibc)
    import Glibc
#endif

/// How the lab's director forwards: a real IPVS director, or (when this kernel or host cannot
/// run one) an ECMP route that does the same to the packets.
public enum LabDirector: Sendable, Equatable {
    case ipvs
    case ecmp(reason: String)

    /// IPVS when `ipvsadm` is installed and the kernel has `ip_vs` (loaded, or as a module).
    public static func choose(ipvsadm: String?, procIPVS: Bool, modulePresent: Bool) -> LabDirector {
        guard let _ = ipvsadm else { return .ecmp(reason: "ipvsadm is not installed (apt-get install ipvsadm)") }
        guard procIPVS || modulePresent else {
            return .ecmp(reason: "this kernel has no ip_vs (no /proc/net/ip_vs, no ip_vs module under /lib/modules)")
        }
        return .ipvs
    }

    /// Whether the running kernel has an ip_vs module file.
    public static func kernelModulePresent() -> Bool {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let dir = "/lib/modules/\(release)/kernel/net/netfilter/ipvs"
        return ["ip_vs.ko", "ip_vs.ko.xz", "ip_vs.ko.zst", "ip_vs.ko.gz"].contains {
            access("\(dir)/\($0)", F_OK) == 0
        }
    }
}

/// The MAC addresses that answered in `arping` output (iputils' "reply from 192.0.2.100
/// [AA:BB:…]" or Habets' "60 bytes from aa:bb:… (192.0.2.100)"), lowercased, in order, unique.
public func arpResponders(_ output: String) -> [String] {
    var out: [String] = []
    for line in output.split(separator: "\n") where line.includes("from") {
        for word in line.split(whereSeparator: { " []()".contains($0) }) {
            let parts = word.split(separator: ":")
            if parts.count == 6, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) {
                let mac = word.lowercased()
                if !out.contains(mac) { out.append(mac) }
            }
        }
    }
    return out
}

/// The ARP verdict: with IPVS only the director may answer for the VIP (it holds it); with the
/// ECMP director nobody does (it routes the VIP without holding it). A realserver answering is
/// the ARP problem rsagent exists to prevent.
public func arpVerdict(responders: [String], names: [String: String], director: LabDirector) -> (
    pass: Bool, text: String
) {
    let named = responders.map { mac in names[mac].map { "\($0) [\(mac)]" } ?? mac }
    let realservers = responders.filter { names[$0]?.hasPrefix("rs") == true }
    if !realservers.isEmpty {
        return (false, "a realserver answered ARP for the VIP: \(named.joined(separator: ", ")) — the ARP problem")
    }
    switch director {
    case .ipvs:
        if responders.count == 1, names[responders[0]] == "director" {
            return (true, "only the director answered: \(named[0])")
        }
        return (
            false,
            responders.isEmpty ? "nobody answered; the director should" : "answered: \(named.joined(separator: ", "))"
        )
    case .ecmp:
        if responders.isEmpty {
            return (true, "no realserver answered (the ECMP director routes the VIP without holding it)")
        }
        return (false, "answered: \(named.joined(separator: ", "))")
    }
}
