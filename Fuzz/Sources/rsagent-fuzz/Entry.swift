import Foundation

#if FUZZING
    /// libFuzzer's driver (`-sanitize=fuzzer`), called from `main` because SwiftPM gives an
    /// executable's `main` a name of its own.
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// One input through the target named by $FUZZ_TARGET (profile, http, lines). libFuzzer's
    /// runtime also links against this name.
    @_cdecl("LLVMFuzzerTestOneInput")
    func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "profile"
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        FuzzTargets.all[name]?(bytes)
        return 0
    }
#endif

/// With libFuzzer (`-DFUZZING`, see Fuzz/README.md): fuzzes the target in $FUZZ_TARGET.
/// Without: replays a corpus through one target, so CI runs every seed once.
/// Usage: rsagent-fuzz TARGET DIR...
@main struct FuzzMain {
    static func main() throws {
        #if FUZZING
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
        #else
            let args = CommandLine.arguments
            guard args.count >= 3, let target = FuzzTargets.all[args[1]] else {
                FileHandle.standardError.write(Data("usage: rsagent-fuzz profile|http|lines DIR...\n".utf8))
                exit(2)
            }
            var n = 0
            for dir in args.dropFirst(2) {
                for file in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() {
                    guard let data = FileManager.default.contents(atPath: "\(dir)/\(file)") else { continue }
                    target(Array(data))
                    n += 1
                }
            }
            print("rsagent-fuzz \(args[1]): \(n) inputs replayed, no crash")
        #endif
    }
}
