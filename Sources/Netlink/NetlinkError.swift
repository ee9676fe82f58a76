internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// A failed netlink request: what was asked, and everything the kernel and libnl said.
///
/// libnl folds several kernel errnos into one `NLE_*` code (`EXDEV`, `ENETUNREACH` and
/// `EHOSTUNREACH` all become `NLE_FAILURE`), so the raw errno and the extended-ack text are
/// captured from the `NLMSG_ERROR` message itself.
public struct NetlinkError: Error, Sendable, CustomStringConvertible {
    /// What was being done, in `ip` terms: `ip addr add 192.0.2.1/32 dev lo`.
    public var operation: String
    /// The kernel's errno (positive), or 0 when the failure was local to libnl.
    public var errno: Int32
    /// libnl's `NLE_*` code (positive), or 0.
    public var libnlCode: Int32
    /// The kernel's extended-ack message, when it sent one.
    public var extack: String?

    public init(operation: String, errno: Int32, libnlCode: Int32 = 0, extack: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.libnlCode = libnlCode
        self.extack = extack
    }

    /// The kernel's words: the extended ack when present, else `strerror(errno)`, else libnl's.
    public var reason: String {
        var parts: [String] = []
        if errno != 0 { parts.append(String(cString: strerror(errno))) }
        if let extack, !extack.isEmpty { parts.append(extack) }
        if parts.isEmpty, libnlCode != 0 { parts.append(String(cString: nl_geterror(libnlCode))) }
        return parts.isEmpty ? "unknown failure" : parts.joined(separator: ": ")
    }

    /// Symbolic errno name for logs and JSON (`EEXIST`), or the number.
    public var errnoName: String {
        switch errno {
        case 0: return "0"
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case EEXIST: return "EEXIST"
        case ENODEV: return "ENODEV"
        case EINVAL: return "EINVAL"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        case EADDRNOTAVAIL: return "EADDRNOTAVAIL"
        case ENETUNREACH: return "ENETUNREACH"
        case EHOSTUNREACH: return "EHOSTUNREACH"
        case EXDEV: return "EXDEV"
        case ENOBUFS: return "ENOBUFS"
        case EACCES: return "EACCES"
        case EBUSY: return "EBUSY"
        default: return "errno \(errno)"
        }
    }

    public var description: String {
        "\(operation): \(reason) (\(errnoName), libnl \(libnlCode))"
    }
}
