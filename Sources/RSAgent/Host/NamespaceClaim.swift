#if canImport(Glibc)
    import Glibc
#endif

/// One rsagent per network namespace.
///
/// rsagent's address mark (`IFA_PROTO` 0x52) is namespace-wide: every rsagent in a namespace
/// sees every marked address as its own. Two instances with different `state_dir`s would each
/// remove the other's VIPs as stale. So the first one to change a namespace claims it, in
/// `/run/rsagent/netns/INODE.json` (INODE: the namespace's inode, as `ls -i /proc/self/ns/net`
/// shows), and another `state_dir` is refused while that owner still owns something there.
/// Several teams' VIPs go into one profile through `include:`.
///
/// The claim lives in `/run` (gone at reboot, with the namespace's addresses) and carries the
/// namespace's cookie (`SO_NETNS_COOKIE`, never reused while the system runs), so a claim left
/// by a namespace that no longer exists is recognised even when its inode number was reused.
public struct NamespaceClaim: Codable, Sendable, Equatable {
    /// The owner: rsagent's identity in a namespace is its `state_dir`.
    public var stateDir: String
    public var profile: String?
    /// The process that last claimed it, and what it was (`rsagent apply -c …`).
    public var pid: Int32
    public var command: String
    public var since: String
    /// `SO_NETNS_COOKIE` of the namespace; 0 when the kernel has none (before 5.14).
    public var cookie: UInt64

    enum CodingKeys: String, CodingKey {
        case stateDir = "state_dir", profile, pid, command, since, cookie
    }

    /// What to do with an existing claim.
    public enum Decision: Equatable, Sendable {
        /// Claim (or refresh) the namespace for this `state_dir`.
        case take
        /// Another `state_dir` owns the namespace.
        case refuse(NamespaceClaim)
    }

    /// Pure: whether `stateDir` may act in a namespace whose claim is `existing`. `ownerStillOwns`
    /// says whether the claim's owner still has something here (a running daemon, saved state,
    /// or marked addresses); a claim whose owner has nothing left, or that belongs to an earlier
    /// namespace with the same inode (another cookie), is stale.
    public static func decide(existing: NamespaceClaim?, stateDir: String, cookie: UInt64, ownerStillOwns: Bool)
        -> Decision
    {
        guard let existing, existing.stateDir != stateDir else { return .take }
        if existing.cookie != cookie { return .take }
        return ownerStillOwns ? .refuse(existing) : .take
    }

    /// The sentence for a refusal.
    public var refusal: String {
        "this network namespace is managed by another rsagent (state_dir \(stateDir)"
            + (profile.map { ", profile \($0)" } ?? "") + ", claimed by pid \(pid) `\(command)` at \(since)); "
            + "only one rsagent may manage a namespace, because every rsagent treats every marked VIP as its own — "
            + "put these VIPs in that profile (or a file it includes with `include:`), or take the other down first "
            + "(rsagent down -c \(profile ?? "ITS-PROFILE"))"
    }
}

/// Reading and writing claims under `/run/rsagent/netns`.
public enum NamespaceClaims {
    public static let directory = "/run/rsagent/netns"

    /// The current namespace's identity: (inode, cookie).
    public static func currentNamespace() -> (inode: UInt64, cookie: UInt64)? {
        var st = stat()
        guard stat("/proc/thread-self/ns/net", &st) == 0 || stat("/proc/self/ns/net", &st) == 0 else { return nil }
        var cookie: UInt64 = 0
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd >= 0 {
            var len = socklen_t(MemoryLayout<UInt64>.size)
            // SO_NETNS_COOKIE (71), Linux ≥ 5.14; older kernels leave the cookie at 0.
            if getsockopt(fd, SOL_SOCKET, 71, &cookie, &len) != 0 { cookie = 0 }
            close(fd)
        }
        return (UInt64(st.st_ino), cookie)
    }

    static func path(inode: UInt64) -> String { "\(directory)/\(inode).json" }

    /// The claim on the current namespace, if any.
    public static func current() -> NamespaceClaim? {
        guard let ns = currentNamespace(), let data = readFile(path(inode: ns.inode)) else { return nil }
        return try? JSON.decode(NamespaceClaim.self, from: String(decoding: data, as: UTF8.self))
    }

    /// The `state_dir` that owns the current namespace, if a claim for it exists.
    public static func owner() -> String? {
        guard let ns = currentNamespace(), let c = current(), c.cookie == ns.cookie else { return nil }
        return c.stateDir
    }

    /// Whether the owner `claim` names still has anything in this namespace: its daemon runs,
    /// its state file remembers changes, or marked addresses are here. A `state_dir` that is
    /// gone (moved while rsagent was stopped) owns nothing.
    static func ownerStillOwns(_ claim: NamespaceClaim, markedAddresses: Bool) -> Bool {
        var st = stat()
        guard stat(claim.stateDir, &st) == 0 else { return false }
        if DaemonStatus.load(stateDir: claim.stateDir) != nil { return true }
        if let state = try? StateStore(directory: claim.stateDir).load(), !state.isEmpty { return true }
        return markedAddresses
    }

    /// Checks the claim for `stateDir`; the refusal, or nil when it may go on.
    public static func check(stateDir: String, markedAddresses: Bool) -> NamespaceClaim? {
        guard let ns = currentNamespace() else { return nil }
        let existing = current()
        let owns = existing.map { ownerStillOwns($0, markedAddresses: markedAddresses) } ?? false
        if case .refuse(let owner) = NamespaceClaim.decide(
            existing: existing, stateDir: stateDir, cookie: ns.cookie, ownerStillOwns: owns)
        {
            return owner
        }
        return nil
    }

    /// Records `stateDir` as the owner of this namespace (after `check` said yes). A claim that
    /// cannot be written is returned as a warning: it protects against a second instance, and
    /// must not stop this one from keeping its VIPs.
    public static func claim(stateDir: String, profile: String?) -> String? {
        guard let ns = currentNamespace() else { return nil }
        // Absolute, so the refusal's `rsagent down -c PROFILE` can be pasted from anywhere.
        let profile = profile.map { $0.hasPrefix("/") ? $0 : currentDirectory() + "/" + $0 }
        if let c = current(), c.stateDir == stateDir, c.cookie == ns.cookie, c.profile == profile,
            c.pid == getpid() || kill(c.pid, 0) == 0
        {
            return nil  // already ours, and said by a process that is still there
        }
        let claim = NamespaceClaim(
            stateDir: stateDir, profile: profile, pid: getpid(), command: processSummary(getpid()) ?? "rsagent",
            since: DaemonStatus.now(), cookie: ns.cookie)
        do {
            try StateStore(directory: directory).makeDirectory()
            try writeAtomically(Array(try JSON.encode(claim).utf8), to: path(inode: ns.inode))
            return nil
        } catch {
            return
                "recording this namespace's owner: \(error); a second rsagent with another state_dir would not be refused here"
        }
    }

    /// Gives the namespace up after `rsagent down` left nothing behind.
    public static func release(stateDir: String) {
        guard let ns = currentNamespace(), let c = current(), c.stateDir == stateDir else { return }
        unlink(path(inode: ns.inode))
    }
}
