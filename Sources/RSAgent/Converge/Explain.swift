import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// Turns a failure into the one sentence an operator reads: what was being done, on what, the
/// kernel's reason, and what to do.
public enum Explain {
    public static func sentence(_ action: Action, _ error: any Error) -> String {
        "\(action.doing): \(cause(action, error)); \(fix(action, error))"
    }

    static func errnoOf(_ error: any Error) -> Int32 {
        switch error {
        case let e as NetlinkError: e.errno
        case let e as SystemError: e.errno
        case let e as StateFileError: e.errno
        default: 0
        }
    }

    static func reasonOf(_ error: any Error) -> String {
        switch error {
        case let e as NetlinkError: e.reason
        case let e as SystemError: e.reason
        default: "\(error)"
        }
    }

    static func cause(_ action: Action, _ error: any Error) -> String {
        if let e = error as? StateFileError {
            return "recording it in \(e.path) first failed (\(e.reason)), so it was not done"
        }
        let e = errnoOf(error)
        switch (action, e) {
        case (.createDevice(_, "dummy"), EOPNOTSUPP):
            return "kernel lacks dummy device support (modprobe dummy) — the kernel said \(reasonOf(error))"
        case (.loadTunnelModule(let device, let kind), _):
            let module = DecapDevice.modules[kind] ?? kind
            return
                "kernel lacks \(kind) tunnel support for \(device) (modprobe \(module)) — the kernel said \(reasonOf(error))"
        case (.createOwnTunnel(let t), EOPNOTSUPP):
            return
                "kernel lacks \(t.kind) tunnel support (modprobe \(DecapDevice.modules[t.kind] ?? t.kind)) — the kernel said \(reasonOf(error))"
        case (.addFOUPort, ENOENT):
            return "kernel lacks FOU support (modprobe fou) — the kernel said \(reasonOf(error))"
        case (.addAddress, EEXIST):
            return
                "address already assigned by another program (not owned by rsagent) — the kernel said \(reasonOf(error))"
        case (.addAddress(let ip, let device), EACCES) where !ip.isIPv4:
            return
                "IPv6 is disabled on \(device) (net.ipv6.conf.\(device).disable_ipv6=1) — the kernel said \(reasonOf(error))"
        case (.addAddress, EAFNOSUPPORT):
            return
                "kernel lacks IPv6 support (booted with ipv6.disable=1, or no ipv6 module) — the kernel said \(reasonOf(error))"
        default:
            return "the kernel said \(reasonOf(error))"
        }
    }

    static func fix(_ action: Action, _ error: any Error) -> String {
        if let e = error as? StateFileError { return e.fix }
        let e = errnoOf(error)
        if case let .addAddress(ip, device) = action, !ip.isIPv4, e == EACCES || e == EAFNOSUPPORT {
            return e == EACCES
                ? "enable IPv6 there (sysctl -w net.ipv6.conf.\(device).disable_ipv6=0) or drop the IPv6 VIPs from the profile"
                : "boot a kernel with IPv6, or drop the IPv6 VIPs from the profile"
        }
        if e == EPERM || e == EACCES {
            return "run rsagent as root (it needs CAP_NET_ADMIN)"
        }
        if e == EROFS {
            return
                "/proc/sys is read-only here (a container?); set it from the host or give the container its own network namespace"
        }
        switch (action, e) {
        case (.createDevice(_, "dummy"), EOPNOTSUPP):
            return
                "load the module with `modprobe dummy` (package linux-modules-extra on some distributions), or use `device: lo`"
        case (.loadTunnelModule(_, let kind), _):
            return
                "load the module with `modprobe \(DecapDevice.modules[kind] ?? kind)`; the director's tunnel packets are dropped without it"
        case (.createOwnTunnel(let t), EOPNOTSUPP):
            return
                "load the module with `modprobe \(DecapDevice.modules[t.kind] ?? t.kind)`; the director's checksummed GRE packets are dropped without it"
        case (.addFOUPort, ENOENT):
            return "load the module with `modprobe fou`; GUE packets are dropped without it"
        case (.setMSSClamp, _):
            return
                "check that libnftables1 is installed (apt install libnftables1) and the kernel has nf_tables (modprobe nf_tables); or set tunnel.mss: off"
        case (.addFOUPort, EADDRINUSE):
            return
                "another program listens on that UDP port; free it or have the director send GUE to another `--tun-port`"
        case (.addAddress, EEXIST):
            return "take it over with `rsagent apply --adopt`, or drop it from the profile"
        case (.createDevice, EEXIST):
            return "a device of that name appeared meanwhile; pick another `device_name` or remove it"
        case (_, ENODEV):
            return "the device disappeared while rsagent worked; run the command again"
        default:
            return "check `dmesg` for the kernel's view and run the command again"
        }
    }
}
