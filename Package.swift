// swift-tools-version: 6.0
import PackageDescription

// Warnings are errors in CI (`swift build -Xswiftc -warnings-as-errors`), not here, so that a
// dependency's new warning cannot break a user's install.
let package = Package(
    name: "rsagent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "rsagent", targets: ["rsagent"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Only its UnixSignals library: ServiceGroup would bring swift-async-algorithms (1 MB).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // libnl-3 / libnl-route-3 as a Swift module. Only `Netlink` imports it.
        .systemLibrary(
            name: "CNetlink",
            pkgConfig: "libnl-route-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev", "pkg-config"])]
        ),
        // Typed Swift over libnl: links, addresses (with IFA_PROTO), route-get.
        .target(name: "Netlink", dependencies: ["CNetlink"]),
        // libyaml as a Swift module. Only `YAML` imports it.
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // A YAML document as a tree of nodes with line:column marks, composed from libyaml's
        // events: all the profile decoder needs, and no Foundation.
        .target(name: "YAML", dependencies: ["CYAML"]),
        // epoll and accept4 for the daemon's listeners (Swift's Glibc module has neither).
        .target(name: "CSockets"),
        // The core, in folders that follow the pipeline (docs/design.md): Profile, Host,
        // Converge, Check, and the daemon, load report, test service and lab. Kernel access goes
        // through `Netlink` and the `HostSystem` seam, so the pure parts test without root.
        .target(
            name: "RSAgent",
            dependencies: [
                "Netlink",
                "YAML",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                "CSockets",
            ]
        ),
        .executableTarget(
            name: "rsagent",
            dependencies: [
                "RSAgent",
                "Netlink",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // Release: linked by lld with packed relative relocations (DT_RELR, glibc >= 2.36):
            // a static-stdlib binary's 57,000 relocations take 1.3 MB as RELA, 10 KB as RELR.
            // No exported symbols (SwiftPM exports all 12,000 by default): the runtime's first
            // dladdr() searched them all, a tenth of `rsagent --version`. scripts/build-release
            // adds the compiler flags.
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker",
                        "--no-export-dynamic",
                    ],
                    .when(configuration: .release))
            ]
        ),
        // Fuzz targets for libFuzzer (Fuzz/README.md); a plain build replays the seed corpus.
        .executableTarget(name: "rsagent-fuzz", dependencies: ["RSAgent"], path: "Fuzz/Sources/rsagent-fuzz"),
        // The JSON documents' golden files (Tests/Golden), shared by the two suites that check them.
        .target(name: "GoldenFiles", path: "Tests/GoldenFiles"),
        .testTarget(name: "RSAgentTests", dependencies: ["RSAgent", "Netlink", "GoldenFiles"]),
        .testTarget(name: "NamespaceTests", dependencies: ["RSAgent", "GoldenFiles"]),
        // In-process tests of the libnl layer; they run only when the test process is in a
        // network namespace of its own (scripts/test uses `unshare --net`).
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink"]),
    ],
    swiftLanguageModes: [.v6]
)
