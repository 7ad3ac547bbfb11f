// swift-tools-version:6.0
import PackageDescription

/// Lanes: a supervisor that runs each tool call of an agent in an isolated, journaled lane.
///
/// Module map (smallest module that can hold the code):
/// - `CLaneSys`: the C that cannot be Swift (clone3 child path, seal-and-exec, wrappers for
///   what Swift's Glibc module hides). Every function says why it is C.
/// - `CSeccomp`, `CCap`: system libraries libseccomp and libcap.
/// - `CLazyCurl`: libcurl loaded on first use, for the statically linked `lanes-mcp`.
/// - `LaneModel`: pure values (Profile, Lane, outcomes, errors). No Foundation.
/// - `LanePlan`: the spawn plan handed from `lanes` to `lane-init`, and its binary codec.
/// - `LaneConfig`: TOML files → model, strict keys, `FILE:LINE:` diagnostics.
/// - `LaneSyscall`: the one syscall layer on swift-system: owned descriptors, read-all and
///   write-all with one EINTR loop, `Errno`, the monotonic clock. Foundation-free (lane-init).
/// - `LaneSys`: host-facing system code: the seccomp compiler, host probes, fds.
/// - `LaneSupervisor`: builds the plan, spawns, relays output, enforces the deadline.
/// - `LaneJournal`: the store: records, the hash chain, the kept run state, one SQLite path.
/// - `LaneGovernance`: gates, budgets, loops and stops decided over the store.
/// - `LaneState`: the state directory: paths, secrets, supervisor liveness locks.
/// - `LaneRuntime`: the step service every front door calls (request → report), warm caches.
/// - `LaneMCP`: `lanes mcp`, the Model Context Protocol server over the step service.
/// - `lane-init`: the single-threaded helper that becomes PID 1 of the sandbox.
/// - `lanes`: the command-line interface (parses and prints; no orchestration).
let strict: [SwiftSetting] = [.unsafeFlags(["-warnings-as-errors"])]
let swiftSettings: [SwiftSetting] = Context.environment["CI"] == "true" ? strict : []
/// Release binaries for `scripts/lanes` and `scripts/bench` are fully static executables: no
/// dynamic loader, no relocation of a large image at start-up (start-up is most of a step's cost).
let staticExecutable: [LinkerSetting] =
    Context.environment["LANES_STATIC_EXECUTABLES"] == "1" ? [.unsafeFlags(["-static-executable"])] : []

/// With the Swift libraries linked statically (`--static-swift-stdlib`, as scripts/lib/setup.sh
/// builds lanes-mcp), FoundationNetworking's static archive calls libcurl. `CLazyCurl` defines
/// those functions instead and loads the shared libcurl on first use, which a server never makes:
/// its 28 libraries stay out of every server's memory (Sources/CLazyCurl). The dynamic build
/// (tests) links Foundation's shared libraries, which bring libcurl themselves.
let lazyCurl: [Target.Dependency] = Context.environment["LANES_STATIC_EXECUTABLES"] == "1" ? ["CLazyCurl"] : []
/// How the release lanes-mcp is linked (it keeps libc shared, so it cannot be `-static-executable`):
/// - `--as-needed`: FoundationNetworking's module still asks the linker for `-lcurl`; this leaves
///   it out, since nothing is left for it to define.
/// - `-no-pie`: a position-independent image of this size carries 116,000 relocations (2.7 MB)
///   that the loader reads and applies at every start, dirtying 1 MB of data pages for good.
/// - `--no-export-dynamic`: nothing looks the server's own symbols up at run time; exported, the
///   30,000 of them are 2.3 MB of symbol tables and keep otherwise dead code alive.
/// Together the server's resident memory after 1,000 steps is 5 to 7 MiB less (docs/benchmarks.md).
let serverLink: [LinkerSetting] =
    Context.environment["LANES_STATIC_EXECUTABLES"] == "1"
    ? [.unsafeFlags(["-Xlinker", "--as-needed", "-Xclang-linker", "-no-pie", "-Xlinker", "--no-export-dynamic"])] : []

let package = Package(
    name: "lanes",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "lanes", targets: ["lanes"]),
        .executable(name: "lane-init", targets: ["lane-init"]),
        .executable(name: "lanes-mcp", targets: ["lanes-mcp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(name: "CLaneSys"),
        .target(name: "CSQLiteConfig", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(name: "CLazyCurl"),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCap", pkgConfig: "libcap", providers: [.apt(["libcap-dev"])]),
        .target(name: "LaneModel", swiftSettings: swiftSettings),
        .target(name: "LanePlan", dependencies: ["CLaneSys"], swiftSettings: swiftSettings),
        .target(
            name: "LaneSyscall",
            dependencies: ["CLaneSys", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: swiftSettings),
        .target(
            name: "LaneConfig",
            dependencies: ["LaneModel", "LaneSyscall", .product(name: "TOMLKit", package: "TOMLKit")],
            swiftSettings: swiftSettings),
        .target(
            name: "LaneSys",
            dependencies: ["CLaneSys", "CSeccomp", "LaneModel", "LanePlan", "LaneSyscall"],
            swiftSettings: swiftSettings),
        // Each step's workspace changes as a transaction (issue 14): compute, apply, revert.
        .target(
            name: "LaneChanges",
            dependencies: ["CLaneSys", "LaneModel", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        // The egress proxy (issue 12): only the supervisor side links it; lane-init never does.
        .target(
            name: "LaneEgress",
            dependencies: [
                "CLaneSys", "LaneModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "LaneSupervisor",
            dependencies: [
                "CLaneSys", "LaneModel", "LanePlan", "LaneSys", "LaneSyscall", "LaneConfig", "LaneChanges", "LaneEgress",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "lane-init", dependencies: ["CLaneSys", "CCap", "LanePlan", "LaneSyscall"],
            path: "Sources/LaneInit", swiftSettings: swiftSettings, linkerSettings: staticExecutable),
        .executableTarget(
            name: "lanes",
            dependencies: [
                "LaneModel", "LaneConfig", "LaneSys", "LaneSyscall", "LaneSupervisor", "LaneJournal", "LaneGovernance",
                "LaneState", "LaneRuntime", "LaneChanges",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings, linkerSettings: staticExecutable),
        .target(
            name: "LaneJournal",
            dependencies: ["LaneModel", "CSQLiteConfig", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .target(
            name: "LaneState",
            dependencies: ["LaneModel", "LaneSys", "LaneSyscall", "LaneJournal"],
            swiftSettings: swiftSettings),
        .target(
            name: "LaneGovernance",
            dependencies: ["LaneModel", "LaneSys", "LaneJournal", "LaneState"],
            swiftSettings: swiftSettings),
        .target(
            name: "LaneRuntime",
            dependencies: [
                "LaneModel", "LaneConfig", "LaneSys", "LaneSupervisor", "LaneJournal", "LaneGovernance", "LaneState",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "LaneMCP",
            dependencies: [
                "LaneModel", "LaneRuntime", "LaneSupervisor", "LaneJournal", "LaneGovernance", "LaneState",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
        // `lanes mcp` execs it; never a static executable (FoundationNetworking, which the MCP
        // SDK imports, needs libcurl, which may only be loaded from a shared library), and kept
        // out of the one-shot `lanes` image.
        .executableTarget(
            name: "lanes-mcp",
            dependencies: [
                "LaneMCP", "LaneModel", "LaneConfig", "LaneSys", "LaneJournal", "LaneState", "LaneRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ] + lazyCurl,
            path: "Sources/LanesMCPMain", swiftSettings: swiftSettings, linkerSettings: serverLink),
        .target(name: "LaneTestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "LanesTests",
            dependencies: ["LaneModel", "LanePlan", "LaneConfig", "LaneSys", "LaneSyscall", "LaneSupervisor", "LaneEgress",
                           "LaneTestSupport", "lane-init", "CLaneSys"],
            swiftSettings: swiftSettings),
        .testTarget(name: "EscapeTests", dependencies: ["LaneTestSupport"], exclude: ["Probes"], swiftSettings: swiftSettings),
        .testTarget(name: "CgroupTests", dependencies: ["LaneSys", "LaneSyscall", "LaneModel", "LaneTestSupport"], swiftSettings: swiftSettings),
        // Every module a test imports is named here: an undeclared one (LaneGovernance) built in
        // time only by chance, and one clean-clone CI run failed with "no such module".
        .testTarget(name: "JournalTests", dependencies: ["LaneJournal", "LaneGovernance", "LaneState", "LaneSys", "LaneModel", "LaneTestSupport",
                                                         .product(name: "GRDB", package: "GRDB.swift")],
                    exclude: ["Fixtures"], swiftSettings: swiftSettings),
        .testTarget(name: "GovernanceTests", dependencies: ["LaneJournal", "LaneGovernance", "LaneState", "LaneModel", "LaneConfig", "LaneTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RuntimeTests", dependencies: ["LaneRuntime", "LaneJournal", "LaneModel", "LaneTestSupport",
                    .product(name: "Logging", package: "swift-log"), .product(name: "InMemoryLogging", package: "swift-log"),
                    "LaneConfig", "LaneGovernance", "LaneState", "LaneSupervisor"], swiftSettings: swiftSettings),
        .testTarget(name: "ChangeTests", dependencies: ["LaneChanges", "LaneModel", "LaneConfig", "LaneTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "MCPTests", dependencies: ["LaneTestSupport", "LaneMCP"], exclude: ["scripts"], swiftSettings: swiftSettings),
        .testTarget(name: "LazyCurlTests", dependencies: ["CLazyCurl"], swiftSettings: swiftSettings),
    ]
)

// The in-process journal benchmark (issue 4): only when asked for, so normal builds stay fast.
//   LANES_BENCH=1 swift build -c release --product journal-bench
if Context.environment["LANES_BENCH"] != nil {
    package.products.append(.executable(name: "journal-bench", targets: ["journal-bench"]))
    package.targets.append(.executableTarget(
        name: "journal-bench", dependencies: ["LaneJournal", "LaneState"], path: "Benchmarks/JournalBench"))
}
