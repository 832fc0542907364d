// swift-tools-version: 6.1
//
// quorumbench's benchmarks (ordo-one's package-benchmark), kept in a nested package so that the root package's
// `swift build` and `swift test` never compile the benchmark plugin.
//
//   swift package --package-path Benchmarks benchmark
//   scripts/benchmarks.sh        # runs them and writes reports/benchmarks.md

import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder; a clone may live in a folder of any name.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "quorumbench-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/ordo-one/package-benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PoolBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "BufferPool", package: root),
                .product(name: "CJemalloc", package: root),
                .product(name: "LoadGenerator", package: root),
                .product(name: "SyncPrimitives", package: root),
            ],
            path: "Benchmarks/PoolBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "ClusterThroughput",
            dependencies: [
                .product(name: "ClusterRuntime", package: root),
                .product(name: "BufferPool", package: root),
            ],
            path: "Benchmarks/ClusterThroughput"
        ),
    ],
    swiftLanguageModes: [.v6]
)
