import BufferPool
import ClusterRuntime
import Foundation
import ReplicationCore

/// What a run drives.
public enum TargetKind: String, Sendable, CaseIterable {
    case cluster, noop
}

/// Spacing of open-loop requests.
public enum Arrival: String, Sendable, CaseIterable {
    case constant, poisson
}

/// Everything `quorumbench run` is told: the cluster, the workload, the schedule.
public struct RunConfig: Sendable {
    /// A `--timeout` shorter than the mean round trip to a replica (W + A for writes, R + S for reads): most
    /// requests time out, so clients never learn the versions their writes made, and under `vv` every such write
    /// adds a sibling, up to `--max-siblings`: each write then carries and merges them all.
    public var timeoutWarning: String? {
        func mean(_ k: MessageKind) -> Double { delays[k]?.mean ?? 0 }
        let trip = min(mean(.write) + mean(.writeAck), mean(.read) + mean(.readResponse))
        guard trip.isFinite, trip > 0, Double(core.timeout) < trip else { return nil }
        let f = Distribution.formatDuration
        return "--timeout \(f(Double(core.timeout))) is shorter than the mean round trip to a replica "
            + "(\(f(trip))): most requests will time out" + (core.versioning == .vv
                ? ", and each write whose client never hears back adds a sibling"
                    + (core.maxSiblings > 0 ? " (up to --max-siblings \(core.maxSiblings), then writes are refused)" : "")
                : "")
    }

    public var core = CoreConfig()
    public var target: TargetKind = .cluster
    public var transport = "inprocess"
    public var clock = "real"
    /// In-process worker threads.
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    /// Run the cluster's workers on the load-generator threads when there are as many of each
    /// (``ClusterOptions/hostWorkers``).
    public var hostWorkers = true
    /// Whether the in-process cluster's workers do run on the load-generator threads.
    public var workersHosted: Bool {
        var options = ClusterOptions(core: core, workers: workers, clients: threads)
        options.hostWorkers = hostWorkers
        return target == .cluster && clock == "real" && options.hostsWorkers
    }
    public var delays = Delays.none
    public var drop = 0.0
    /// Random and scripted faults.
    public var faults = FaultPlan()
    public var failureRate: Double { faults.failureRate }
    public var workload: WorkloadName = .a
    /// read, update, insert, rmw, delete
    public var proportions: [Double] = WorkloadName.a.mix
    public var keys = 100_000
    public var valueSize: Distribution = .constant(256)
    public var distribution: KeyDistribution = .zipfian
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var concurrency = 64
    /// Open loop at this many ops/s (all threads); nil: closed loop.
    public var rate: Double?
    public var arrival: Arrival = .constant
    public var duration: UInt64 = 10_000_000_000
    public var warmup: UInt64 = 2_000_000_000
    /// Stop after this many measured operations instead of a duration.
    public var ops: Int?
    public var seed: UInt64 = 1
    /// `--context-cache`: the keys whose context each thread keeps for its updates; nil: ``contextCache``'s
    /// default.
    public var contextCacheSize: Int?
    /// Each thread's context cache (keys): as given, or room for twice the records (the cache is two-way
    /// set-associative: a key then seldom meets two others in its set) within 8M slots over all threads, and
    /// never below 65,536. A fixed 65,536 left 28% of the default run's updates blind (100,000 keys, counted
    /// from the warm-up on), each one more sibling.
    public var contextCache: Int {
        if let contextCacheSize { return contextCacheSize }
        return max(65_536, min(ContextCache.slots(2 * keys), (1 << 23) / max(1, threads)))
    }

    /// What `threads` context caches of `capacity` keys can take, bytes: their slots, allocated whole, each
    /// holding at most one context (two arrays, ~200 bytes with five nodes' entries and a write id).
    public static func contextCacheBytes(capacity: Int, threads: Int) -> Double {
        Double(threads) * Double(ContextCache.slots(capacity)) * Double(MemoryLayout<ContextCache.Way>.stride + 200)
    }
    /// `--consistency-check`: whether the oracle classifies every read as fresh or stale and counts the lost
    /// writes at the end. It keeps what it knows of every write (~38 bytes) until then, so a run's memory grows
    /// with its writes; off, neither figure is measured and memory stays flat (a soak test, a latency-only run).
    public var consistencyCheck = true
    /// `--check-memory`: the most the oracle may hold, bytes. A run whose oracle grows past it ends its measured
    /// phase there (``EarlyStop/checkMemory(limit:held:)``) and reports what it measured, instead of growing until
    /// the machine runs out (a full-speed real-time run with the check on takes ~7 MB more a second here).
    public var checkMemory = Int.max
    /// Whether this run keeps the oracle: a cluster target with the check on.
    public var checksConsistency: Bool { target == .cluster && consistencyCheck }
    /// A cluster run whose user turned the check off (a noop target has nothing to check, and is not this).
    public var consistencyUnchecked: Bool { target == .cluster && !consistencyCheck }
    /// Schedule lag p99 above which an open-loop run is declared generator-bound, ns.
    public var generatorBoundLag: UInt64 = 1_000_000
    /// Test hook for `--target noop`: hold every reply that falls due in [at, at + for) (from the start of the
    /// measured phase, ns) until the window ends — a stalled server, to show coordinated omission.
    public var noopStall: (at: UInt64, for: UInt64)?
    /// Virtual clock only: each node handles its messages one at a time, each taking a draw of this.
    public var serviceTime: Distribution?
    /// `--workload visibility`: read offsets after each trial write commits, ns.
    public var probeTimes: [UInt64] = Array(stride(from: 0, through: 100_000_000, by: 1_000_000))
    /// Test hook: record the write ids every wiped node held, to explain losses (``RunResult/unexplainedLosses``).
    public var traceWipes = false

    /// How long a client waits for a reply before it gives up on a request (two request timeouts and 50 ms: its
    /// coordinator may have gone down holding it). ``ThreadDriver/clientTimeout`` when faults can take nodes down.
    public var clientTimeout: UInt64 { 2 * core.timeout + 50_000_000 }
    /// How long the oracle keeps a superseded write checkable (``Oracle/init(shards:retention:deleteGrace:singleThreaded:)``):
    /// longer than a read can take, so twice ``clientTimeout``, and at least 2 s. A fixed 2 s let a read under
    /// `--timeout 1s` outlast it: the writes it owed were no longer looked at, and it could not be found stale.
    public var oracleRetention: UInt64 { max(2_000_000_000, 2 * clientTimeout) }
    /// What the oracle takes a delete's tombstone purge for (``Oracle/init(shards:retention:deleteGrace:singleThreaded:)``):
    /// the store's grace under `vv`; under `lww` a purged delete is lost like any write lww drops.
    public var oracleDeleteGrace: UInt64? { core.versioning == .vv ? core.tombstoneGrace : nil }
    /// The effective configuration as text, flag name → value, for the report and run.json.
    public var settings: [(String, String)] = []

    public init() {}

    /// Thread `thread`'s own share of `--ops` (nil: no --ops), the remainder going to the first threads: what each
    /// simulated thread does in closed loop. (Open loop, in either clock, every measured arrival takes one from a
    /// pool common to the threads as it comes due.)
    public func opsShare(of thread: Int) -> Int? {
        ops.map { $0 / threads + (thread < $0 % threads ? 1 : 0) }
    }

    /// Open loop, when a thread that stops at `now`, having sent its last measured request at `lastSent`, ends the
    /// measured phase (the latest such time of the threads does): over a duration, `now`; with `--ops`, one mean
    /// interval of the schedule (1 / rate) after the last send, where it would have sent the next one. The phase
    /// then spans exactly the intervals of the requests sent: 500 operations at 1,000 ops/s measure 0.5 s (ending
    /// at the last send it was 0.499 s, and a single operation measured no time at all).
    public func openLoopEnd(now: UInt64, lastSent: UInt64) -> UInt64 {
        guard ops != nil, let rate else { return now }
        return lastSent &+ UInt64((1e9 / rate).rounded(.up))
    }

    /// The value-size distribution as written.
    public var valueSizeText: String {
        if case .constant(let v) = valueSize { return String(Int(v)) }
        return valueSize.render(.count)
    }
}
