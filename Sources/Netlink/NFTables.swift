internal import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// nftables through `libnftables`, the library `nft` itself is built on (Debian's
/// `libnftables1`): commands in nft's own language, run as one transaction, without spawning
/// `nft`. The library is opened at first use (`dlopen`): only a realserver that clamps the MSS
/// needs it installed, and no other command pays for loading it and its dependencies.
public final class NFTables {
    private typealias New = @convention(c) (UInt32) -> OpaquePointer?
    private typealias Free = @convention(c) (OpaquePointer?) -> Void
    private typealias Buffer = @convention(c) (OpaquePointer?) -> Int32
    private typealias GetBuffer = @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?
    private typealias Run = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32

    public static let library = "libnftables.so.1"
    private let context: OpaquePointer
    private let free: Free
    private let run: Run
    private let output: GetBuffer
    private let error: GetBuffer

    public init() throws {
        let what = "opening \(Self.library) (nftables)"
        guard let handle = dlopen(Self.library, RTLD_NOW | RTLD_LOCAL) else {
            throw NetlinkError(
                operation: what, errno: ENOENT,
                extack: "\(String(cString: dlerror())); install it (apt install libnftables1)")
        }
        func symbol<T>(_ name: String, _: T.Type) throws -> T {
            guard let p = dlsym(handle, name) else {
                throw NetlinkError(operation: what, errno: ENOSYS, extack: "\(Self.library) has no \(name)")
            }
            return unsafeBitCast(p, to: T.self)
        }
        let new = try symbol("nft_ctx_new", New.self)
        free = try symbol("nft_ctx_free", Free.self)
        run = try symbol("nft_run_cmd_from_buffer", Run.self)
        output = try symbol("nft_ctx_get_output_buffer", GetBuffer.self)
        error = try symbol("nft_ctx_get_error_buffer", GetBuffer.self)
        guard let ctx = new(0) else { throw NetlinkError(operation: what, errno: ENOMEM) }
        context = ctx
        // Output and errors into buffers, not the process's stdout and stderr.
        _ = try symbol("nft_ctx_buffer_output", Buffer.self)(ctx)
        _ = try symbol("nft_ctx_buffer_error", Buffer.self)(ctx)
    }

    deinit { free(context) }

    /// Runs `commands` (nft syntax, one transaction: all or nothing) and returns what nft
    /// printed; `operation` names it in the error, whose reason is nft's first error line.
    @discardableResult
    public func run(_ commands: String, operation: String) throws -> String {
        let rc = run(context, commands)
        let out = output(context).map { String(cString: $0) } ?? ""
        if rc != 0 {
            let text = error(context).map { String(cString: $0) } ?? ""
            let first =
                text.split(separator: "\n").first { $0.hasPrefix("Error:") } ?? text.split(separator: "\n").first
            throw NetlinkError(operation: operation, errno: 0, extack: first.map(String.init) ?? "nft failed")
        }
        return out
    }
}

/// One nftables table as the kernel lists it: its name and the comment nft stored with it.
public struct NFTable: Equatable, Sendable {
    public var name: String
    public var comment: String?
    public init(name: String, comment: String?) { self.name = name; self.comment = comment }
}

extension NFTables {
    /// The `inet` tables of this namespace, read over nfnetlink (`nft list tables inet`)
    /// without libnftables. Where nf_tables is a module that is not loaded there are none, and
    /// asking would load it: then nothing is asked.
    public static func inetTables() throws -> [NFTable] {
        guard kernelHasNFTables else { return [] }
        let what = "nft list tables inet"
        let socket = try RouteSocket(netlinkProtocol: NETLINK_NETFILTER)
        let type = Int32(NFNL_SUBSYS_NFTABLES) << 8 | Int32(NFT_MSG_GETTABLE.rawValue)
        guard let msg = nlmsg_alloc_simple(type, NLM_F_REQUEST | NLM_F_DUMP) else {
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        var header = nfgenmsg(nfgen_family: UInt8(NFPROTO_INET), version: UInt8(NFNETLINK_V0), res_id: 0)
        guard nlmsg_append(msg, &header, MemoryLayout<nfgenmsg>.size, Int32(NLMSG_ALIGNTO)) >= 0 else {
            nlmsg_free(msg)
            throw NetlinkError(operation: what, errno: ENOMEM)
        }
        var out: [NFTable] = []
        let table = AttributeTable(maxType: Int(NFTA_TABLE_USERDATA.rawValue))
        try socket.dump(msg, operation: what) { hdr in
            guard table.parse(hdr, headerSize: MemoryLayout<nfgenmsg>.size),
                let name = table[Int(NFTA_TABLE_NAME.rawValue)]
            else { return }
            let userdata = table[Int(NFTA_TABLE_USERDATA.rawValue)].map(attributeBytes) ?? []
            out.append(NFTable(name: attributeString(name), comment: comment(inUserdata: userdata)))
        }
        return out
    }

    /// nf_tables is loaded (`/sys/module/nf_tables`), or cannot be a module here (a kernel
    /// without module support has no `/proc/modules`; a built-in one is listed in
    /// `modules.builtin`).
    static var kernelHasNFTables: Bool {
        if access("/sys/module/nf_tables", F_OK) == 0 || access("/proc/modules", F_OK) != 0 { return true }
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let f = fopen("/lib/modules/\(release)/modules.builtin", "r") else { return false }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasSuffix("/nf_tables.ko\n") { return true }
        }
        return false
    }

    /// libnftnl keeps a table's comment in its user data as type-length-value records (one
    /// byte each for type and length); type 0 is the comment, NUL-terminated.
    static func comment(inUserdata bytes: [UInt8]) -> String? {
        var i = 0
        while i + 2 <= bytes.count {
            let type = bytes[i], length = Int(bytes[i + 1])
            guard i + 2 + length <= bytes.count else { return nil }
            if type == 0 {
                var value = Array(bytes[(i + 2)..<(i + 2 + length)])
                if let z = value.firstIndex(of: 0) { value.removeSubrange(z...) }
                return String(decoding: value, as: UTF8.self)
            }
            i += 2 + length
        }
        return nil
    }
}
