// swift-tools-version: 6.1
//
// quorumbench: a benchmarking and load-generation suite for leaderless, Dynamo-style replication.
// The benchmarks live in the nested package `Benchmarks/` so that building and testing this package never
// compiles the package-benchmark plugin.

import PackageDescription

import class Foundation.ProcessInfo

// QUORUMBENCH_SYSTEM_ALLOCATOR=1 (set by scripts/tsan.sh) builds the buffer pool on the system allocator:
// ThreadSanitizer's malloc interceptors and jemalloc's malloc cannot share a process.
let systemAllocator = ProcessInfo.processInfo.environment["QUORUMBENCH_SYSTEM_ALLOCATOR"] != nil

// The hot modules touch class properties on every message; their state is confined to one thread by design
// (see ClusterRuntime), so release builds skip the runtime exclusivity checks there. Debug builds keep them.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "quorumbench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quorumbench", targets: ["quorumbench"]),
        .library(name: "BufferPool", targets: ["BufferPool"]),
        // For the benchmarks' raw mallocx/sdallocx baselines.
        .library(name: "CJemalloc", targets: ["CJemalloc"]),
        .library(name: "ReplicationCore", targets: ["ReplicationCore"]),
        .library(name: "ClusterRuntime", targets: ["ClusterRuntime"]),
        .library(name: "LoadGenerator", targets: ["LoadGenerator"]),
        .library(name: "SyncPrimitives", targets: ["SyncPrimitives"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
    ],
    targets: [
        // Debian's libjemalloc-dev. The only place allocator C symbols enter Swift.
        .systemLibrary(
            name: "CJemalloc",
            pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]
        ),
        // Thread-local slot and relaxed atomic load/store helpers the buffer pool's fast path needs,
        // which Swift cannot express without a C shim (no `thread_local` in Swift).
        .target(name: "CQuorumSupport"),
        // Locks, queues and parking that ThreadSanitizer understands; shared by the pool and the runtimes.
        .target(name: "SyncPrimitives", swiftSettings: hotPath),
        .target(
            name: "BufferPool",
            dependencies: systemAllocator
                ? ["CQuorumSupport", "SyncPrimitives"] : ["CJemalloc", "CQuorumSupport", "SyncPrimitives"],
            swiftSettings: systemAllocator ? [.define("QB_SYSTEM_ALLOCATOR")] : []
        ),
        // The sans-I/O replication core: ring, versions, store, coordinator, node state machines.
        .target(name: "ReplicationCore", dependencies: ["BufferPool", "SyncPrimitives"], swiftSettings: hotPath),
        // The runtimes that run the core: in-process threads (and, later, virtual time and loopback TCP).
        .target(
            name: "ClusterRuntime", dependencies: ["ReplicationCore", "SyncPrimitives", "BufferPool"],
            swiftSettings: hotPath),
        // Workloads, open and closed loop drivers, recorders, the consistency oracle.
        .target(
            name: "LoadGenerator",
            dependencies: [
                "ClusterRuntime", "ReplicationCore", "SyncPrimitives", "BufferPool", "CQuorumSupport",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: hotPath),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // CSV, Markdown, HdrHistogram logs, SVG charts.
        .target(
            name: "Reports",
            dependencies: [
                "LoadGenerator", "ReplicationCore", "ClusterRuntime", "BufferPool", "CZlib",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        // Checkers and harnesses shared by the test suites of this and later issues.
        .target(
            name: "QuorumTestSupport",
            dependencies: ["ReplicationCore", "ClusterRuntime", "SyncPrimitives", "BufferPool"]
        ),
        .executableTarget(
            name: "quorumbench",
            dependencies: [
                "BufferPool", "LoadGenerator", "Reports", "ClusterRuntime", "ReplicationCore", "SyncPrimitives",
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "BufferPoolTests",
            dependencies: ["BufferPool", "SyncPrimitives"]
        ),
        .testTarget(
            name: "ReplicationCoreTests",
            dependencies: ["ReplicationCore", "QuorumTestSupport", "BufferPool"]
        ),
        .testTarget(
            name: "LoadGeneratorTests",
            dependencies: ["LoadGenerator", "ReplicationCore", "Reports", "ClusterRuntime", .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        .testTarget(
            name: "ClusterRuntimeTests",
            dependencies: ["ClusterRuntime", "ReplicationCore", "QuorumTestSupport", "BufferPool", "SyncPrimitives"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
