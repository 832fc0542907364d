import ArgumentParser
import BufferPool

struct Quorumbench: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "quorumbench",
        abstract: "Benchmark and load generator for leaderless, Dynamo-style replication.",
        discussion: """
            Drives a replicated key-value store (n replicas per key, write quorum w, read quorum r) with YCSB-style \
            workloads and reports latency, availability and staleness side by side.

            Commands arriving in later releases: node, cluster, compare, capacity, merge.
            """,
        version: "quorumbench \(version) (jemalloc \(JemallocStatistics.version))",
        subcommands: [RunCommand.self, SweepCommand.self, PoolInfo.self],
        defaultSubcommand: nil
    )
}

/// Prints the buffer pool's size classes and jemalloc's figures: a quick check that jemalloc is linked and working.
struct PoolInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool-info",
        abstract: "Show the buffer pool's size classes and jemalloc statistics."
    )

    func run() throws {
        let pool = BufferPool.shared
        let buffer = pool.acquire(count: 256)
        pool.release(buffer)
        let stats = pool.statistics()
        print("jemalloc \(JemallocStatistics.version), pool arena \(pool.arena)")
        print("size classes (\(SizeClass.count)): " + (0..<SizeClass.count).map { String(SizeClass.size(ofIndex: $0)) }.joined(separator: " "))
        print("acquires \(stats.acquires) releases \(stats.releases) cache hits \(stats.cacheHits) bytes cached \(stats.bytesCached)")
        print("jemalloc allocated \(stats.jemallocAllocated) active \(stats.jemallocActive) resident \(stats.jemallocResident) mapped \(stats.jemallocMapped)")
    }
}
