import BufferPool
import ClusterRuntime
import Foundation
import Histogram
import ReplicationCore
import Synchronization
import SyncPrimitives

/// Totals of one operation kind over the measured phase.
public struct KindTotals: @unchecked Sendable {
    public var ok = 0
    public var failed = 0
    public var histogram = makeLatencyHistogram()
    public var attempted: Int { ok + failed }
    public init() {}
}

/// One interval (second) of the run, merged over threads.
public struct IntervalRecord: Sendable {
    public var index: Int
    /// Per op kind, the latencies of what completed ok (nil: nothing), packed: a run keeps one per second.
    public var latencies: [PackedHistogram?]
    public var ok: [Int]
    public var failed: [Int]
    /// Nodes up, averaged over the second.
    public var nodesUp: Double

    /// The latency histogram of op kind `kind` (nil: nothing completed ok).
    public func histogram(_ kind: Int) -> Histogram<UInt64>? { latencies[kind]?.unpacked() }
}

/// One probe offset of `--workload visibility`: reads issued t after a write committed, and how many of them
/// returned it.
public struct VisibilityPoint: Sendable, Equatable {
    public var t: UInt64
    public var reads: Int
    public var consistent: Int
    public var probability: Double { reads > 0 ? Double(consistent) / Double(reads) : 0 }
}

/// Everything a run measured.
public struct RunResult: @unchecked Sendable {
    public var config: RunConfig
    public let totals: [KindTotals]
    /// Totals over every kind, summed once: the reports ask for them a dozen times, and each time the sum merged
    /// the kinds' histograms anew (~180,000 cache misses at the end of every run).
    public let all: KindTotals
    public var intervals: [IntervalRecord]
    public var staleReads = 0
    public var staleK = 0
    public var maxK = 0
    public var lostWrites = 0
    public var lostWriteSamples: [Oracle.Loss] = []
    public var counters = CoreCounters()
    public var droppedMessages = 0
    public var partitionedMessages = 0
    /// The faults as they happened: conditions from each change on (times from the start of the measured phase).
    public var faultTimeline: [(at: UInt64, conditions: [NodeCondition])] = []
    /// Rounds of handoff and anti-entropy the quiescent end needed before the lost-write check.
    public var settleRounds = 0
    /// After that: keys whose replicas still differ, and Merkle roots that differ between replicas.
    public var divergentKeys = 0
    public var divergentTrees = 0
    /// Virtual clock: events the simulation handled, and whether virtual time stopped advancing (zero delays).
    public var simulatedEvents = 0
    public var virtualTimeStalled = false
    /// Of a stalled run: nothing completed in zero time, yet virtual time stood still for 20,000,000 events — the
    /// simulator's fault, not the input's.
    public var virtualTimeSpun = false
    /// `--workload visibility`: P(consistent read | t after commit), per probe offset.
    public var visibility: [VisibilityPoint] = []
    /// With `RunConfig.traceWipes`: lost writes that neither a wiped node held nor a write superseding them.
    public var unexplainedLosses = 0
    /// Why the measured phase ended before its `--duration` or `--ops` (nil: it did not).
    public var stoppedEarly: EarlyStop?
    /// Measured phase length, seconds. 0 only in virtual time, when no time passed: every operation completed
    /// in zero time (no delay between a client and its coordinator, and a coordinator that answered from its own
    /// replica).
    public var durationSeconds: Double = 0

    /// What the faults put the measured phase through (nil: no faults): the fraction of node-time down and the
    /// down periods in it — with random failures, how much of the failure rate a run of this length sampled.
    public var faultExposure: FaultExposure? {
        faultTimeline.isEmpty ? nil : FaultExposure(faultTimeline, until: UInt64((durationSeconds * 1e9).rounded()))
    }

    /// The down periods random failures would give the measured phase on average (0: none asked for).
    public var expectedFailures: Double {
        config.faults.expectedFailures(nodes: config.core.nodes, seconds: durationSeconds)
    }

    /// Virtual time did not advance over the measured phase: latencies are real (zero), a rate is not defined.
    public var timeStoodStill: Bool { durationSeconds == 0 && all.attempted > 0 }

    /// Real time, open loop: whether the generator could not keep its schedule — its sends' lag behind their
    /// intended starts has a p99 over `lagLimit`, judged on 100 sends at least (over fewer, p99 is the largest
    /// one: a 0.5 ops/s run was "generator-bound" because its first send waited 1.1 ms for its thread to start),
    /// or it sent too few (``shortOfSchedule(rate:)``).
    public func behindSchedule(rate: Double, lagLimit: UInt64) -> Bool {
        scheduleLag.totalCount >= 100 && scheduleLag.valueAtPercentile(99) > lagLimit || shortOfSchedule(rate: rate)
    }

    /// Open loop: whether the requests sent fall short of the schedule — more than 5% below `--rate` × the measured
    /// time, or with Poisson arrivals more than 4 standard deviations of that count (√(rate × time)) if that is
    /// more: a Poisson schedule's own count varies, and at 10 ops/s over 2 s five seeds in eight fell 5% short and
    /// were called slot-bound.
    public func shortOfSchedule(rate: Double) -> Bool {
        let expected = rate * durationSeconds
        var slack = 0.05 * expected
        if config.arrival == .poisson { slack = max(slack, 4 * expected.squareRoot()) }
        return Double(all.attempted) < expected - slack
    }

    /// `count` operations per second of the measured phase; 0 when no time passed, where no rate is defined
    /// (dividing by a floor of a nanosecond reported 20,000 operations as 2·10¹³ ops/s).
    public func rate(_ count: Int) -> Double { durationSeconds > 0 ? Double(count) / durationSeconds : 0 }
    /// Wall-clock start of the run (for the .hlog StartTime), seconds since 1970.
    public var startTime: Double = 0
    /// Offset of interval 0 from the start of the run (the warm-up), seconds.
    public var warmupSeconds: Double = 0
    /// Open loop: how late requests were sent against their schedule (ns).
    public var scheduleLag = makeLatencyHistogram()
    public var generatorBound = false
    /// What held an open loop behind its schedule, when something did: in real time the generator itself
    /// ("generator-bound"); in virtual time, where the generator never lags, only the `--concurrency` slots
    /// ("slot-bound": requests waited for one).
    public var bound: Bound? { generatorBound ? (config.clock == "virtual" ? .slots : .generator) : nil }
    public enum Bound: String, Sendable {
        case generator = "generator-bound"
        case slots = "slot-bound"
    }
    /// Open loop: measured requests that waited `--timeout` for a free slot and failed unsent (they are in
    /// `failed`).
    public var expiredRequests = 0
    /// Updates and deletes sent in the measured phase, and those that carried no context: their
    /// key was not in the thread's context cache (`--context-cache`), so each is concurrent with every version
    /// of its key (under `vv`, a sibling beside them).
    public var updates = 0
    public var blindUpdates = 0
    /// Closed loop with several threads: each thread's share of `--concurrency` at the end (``SlotBalancer``).
    public var threadShares: [Int] = []
    public var achievedRate: Double = 0
    public var pool = BufferPoolStatistics()
    /// Versions per key at the end of the run (siblings under vv), over the written keys: the most and the mean.
    public var maxSiblings = 0
    public var meanSiblings = 0.0

    public init(config: RunConfig, totals: [KindTotals], intervals: [IntervalRecord]) {
        self.config = config
        self.totals = totals
        self.intervals = intervals
        all = RunResult.sum(totals)
    }

    static func sum(_ totals: [KindTotals]) -> KindTotals {
        var t = KindTotals()
        for k in totals {
            t.ok += k.ok
            t.failed += k.failed
            t.histogram.add(k.histogram)
        }
        return t
    }
}

/// Why a run's measured phase ended before its `--duration` or `--ops`. The run still drains what is in flight,
/// heals, repairs, checks for lost writes and reports what it measured up to then.
public enum EarlyStop: Sendable, Equatable {
    /// A signal: the user's Ctrl-C (SIGINT), or SIGTERM (a CI job's timeout, `kill`).
    case signal(Int32)
    /// The consistency check held more than `--check-memory` (`limit` bytes; `held` when it was seen).
    case checkMemory(limit: Int, held: Int)

    public var signalName: String? {
        guard case .signal(let s) = self else { return nil }
        return s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "signal \(s)"
    }
}

/// A request to end the measured phase now, from any thread (a signal's handler, the controller), read by the
/// load threads (a relaxed load per loop) and the simulator (every 16,384 replies). The first reason given is kept.
public final class StopRequest: Sendable {
    let requested = Atomic<Bool>(false)
    let why = Mutex<EarlyStop?>(nil)
    /// 0: the measured phase has not begun; 1: it is on; 2: it ended. Only a phase that is on can be stopped.
    let phase = Atomic<Int>(0)

    public init() {}

    /// Asks the measured phase to end now. False if it is not on (not begun, or over: the run is loading, warming
    /// up, draining or checking), and nothing is asked.
    @discardableResult
    public func request(_ reason: EarlyStop) -> Bool {
        guard phase.load(ordering: .acquiring) == 1 else { return false }
        why.withLock { if $0 == nil { $0 = reason } }
        requested.store(true, ordering: .releasing)
        return true
    }

    func began() { phase.store(1, ordering: .releasing) }
    /// The measured phase ended by itself (its duration or --ops): a stop asked for from now on ends nothing.
    func ended() { if phase.load(ordering: .relaxed) == 1 && !isRequested { phase.store(2, ordering: .releasing) } }
    var isMeasuring: Bool { phase.load(ordering: .relaxed) == 1 }

    @inline(__always) public var isRequested: Bool { requested.load(ordering: .relaxed) }

    /// Asks for a stop if `oracle` holds more than `limit` bytes.
    func checkMemory(of oracle: Oracle, limit: Int) {
        let held = oracle.heldBytes()
        if held > limit { request(.checkMemory(limit: limit, held: held)) }
    }
    public var reason: EarlyStop? { why.withLock { $0 } }
}

/// Shared state of a run's threads.
final class RunControl: @unchecked Sendable {
    let loaded = Atomic<Int>(0)
    let startMeasured = Atomic<UInt64>(0)
    /// When the first thread stopped issuing measured operations (duration reached, or --ops all taken).
    let stopAt = Atomic<UInt64>(0)
    let insertCounter: Atomic<UInt64>
    /// `--ops`: measured operations not yet taken by a thread (threads take them a few at a time, so that one
    /// that goes faster does more of them).
    let opsLeft: Atomic<Int>
    let balancer: SlotBalancer
    let mailbox = Locked<[IntervalSample]>([])
    let lags = Locked<Histogram<UInt64>>(makeLatencyHistogram())
    /// Open loop: measured requests failed unsent after waiting `--timeout` for a slot (``ThreadDriver/expire``).
    let expired = Atomic<Int>(0)
    /// Measured updates and deletes sent, and those without a context (``ThreadDriver/handOver()``).
    let updates = Atomic<Int>(0)
    let blindUpdates = Atomic<Int>(0)
    let finished = DispatchSemaphore(value: 0)
    let stop: StopRequest
    init(keys: Int, threads: Int, ops: Int?, stop: StopRequest = StopRequest()) {
        self.stop = stop
        insertCounter = Atomic(UInt64(keys))
        opsLeft = Atomic(ops ?? 0)
        balancer = SlotBalancer(threads: threads)
    }

    /// Takes up to `count` of the measured operations left; returns how many it got (the counter goes below
    /// zero once they are all taken).
    func takeOps(_ count: Int) -> Int {
        max(0, min(count, opsLeft.subtract(count, ordering: .relaxed).oldValue))
    }
}

/// Runs a configured benchmark: loads the records, warms up, measures, and collects the result.
public final class Runner {
    public let config: RunConfig
    let pool = BufferPool.shared
    /// Progress output: called about once a second with (elapsed measured seconds, ops/s, p99 µs, errors).
    public var onProgress: ((Double, Double, Double, Int) -> Void)?
    /// Phase announcements ("loading 100000 records", …).
    public var onPhase: ((String) -> Void)?

    /// Whether what the run built (cluster, stores, oracle) is left for the process's exit to reclaim rather than
    /// freed as `run` returns. `quorumbench run` does one run a process, and freeing a million keys' versions one
    /// by one took 4 s of a 22 s simulated run; a sweep runs many in one process and frees each.
    public var leaveForExit = false
    /// Ends the measured phase early when asked (``StopRequest/request(_:)``); the run goes on to its report.
    public let stop = StopRequest()

    public init(config: RunConfig) { self.config = config }

    public func run() -> RunResult {
        if config.clock == "virtual" {
            onPhase?("simulating \(config.keys) records, then " + (config.ops.map { "\($0) operations" }
                     ?? "\(Distribution.formatDuration(Double(config.duration))) of virtual time"))
            let simulation = Simulation(config: config, pool: pool, stop: stop)
            if leaveForExit { _ = Unmanaged.passRetained(simulation) }
            return simulation.run()
        }
        let poolStart = pool.statistics()
        let control = RunControl(keys: config.keys, threads: config.threads, ops: config.ops, stop: stop)
        let oracle = config.checksConsistency
            ? Oracle(retention: config.oracleRetention, deleteGrace: config.oracleDeleteGrace) : nil
        var cluster: InProcessCluster?
        let faults = config.target == .cluster && !config.faults.isEmpty
            ? FaultState(nodes: config.core.nodes, slowDelays: config.faults.slowDelays, crashMode: config.faults.crashMode)
            : nil
        // The fault schedule covers the measured phase (or an hour, for --ops).
        let horizon = config.ops == nil ? config.duration : max(config.duration, 3_600_000_000_000)
        let timeline = faults == nil ? [] : config.faults.timeline(nodes: config.core.nodes, horizon: horizon, seed: config.seed)
        let wiped = Locked<Set<UInt64>>([])
        var purged: PurgedDeletes?
        let dropGate = Gate()
        if config.target == .cluster {
            var options = ClusterOptions(
                core: config.core, workers: config.workers, clients: config.threads, delays: config.delays,
                drop: config.drop, seed: config.seed, pool: pool, faults: faults)
            options.hostWorkers = config.workersHosted
            // --drop starts with the warm-up, as in virtual time (where the records are loaded without messages):
            // a load that lost messages waited out the timeout for a share of its inserts (--drop 0.3: 40 s for
            // 100,000 records), and left the replicas that missed them to repair during the measured phase.
            if config.drop > 0 { options.dropGate = dropGate }
            if config.traceWipes {
                options.onWipe = { _, versions in
                    let ids = versions.compactMap(\.writeID)
                    wiped.withLock { $0.formUnion(ids) }
                }
            }
            let c = InProcessCluster(options: options)
            purged = PurgedDeletes(watching: c.nodes)
            c.start()
            cluster = c
        }
        let wallStart = Date().timeIntervalSince1970
        onPhase?("loading \(config.keys) records")
        let stall = config.noopStall
        for t in 0..<config.threads {
            let port = cluster?.ports[t]
            let driver = ThreadDriver(thread: t, config: config, control: control, oracle: oracle, pool: pool)
            let thread = Thread {
                if let port {
                    driver.run(target: ClusterTarget(port: port))
                } else {
                    // The stall window is relative to the measured phase, known once loading is done.
                    driver.run(target: NoopTarget(pool: BufferPool.shared), stall: stall)
                }
                control.finished.signal()
            }
            thread.name = "quorumbench-load-\(t)"
            thread.start()
        }
        // Wait for the load phase, then start the clock: warm-up, then the measured phase.
        while control.loaded.load(ordering: .acquiring) < config.threads { usleep(2000) }
        dropGate.open()
        let origin = monotonicNanos() &+ config.warmup
        control.startMeasured.store(origin, ordering: .releasing)
        let faultsDone = Atomic<Bool>(false)
        let controllerDone = DispatchSemaphore(value: 0)
        if let faults {
            // The fault controller: publishes each change of the timeline at its time.
            let thread = Thread { [timeline, cluster] in
                for (at, conditions) in timeline {
                    while !faultsDone.load(ordering: .acquiring) {
                        let now = monotonicNanos()
                        if now >= origin &+ at { break }
                        usleep(UInt32(min(2_000, (origin &+ at &- now) / 1000 + 1)))
                    }
                    if faultsDone.load(ordering: .acquiring) { break }
                    faults.set(conditions)
                    cluster?.wakeAll()
                }
                controllerDone.signal()
            }
            thread.name = "quorumbench-faults"
            thread.start()
        }
        if config.warmup > 0 { onPhase?("warming up for \(Distribution.formatDuration(Double(config.warmup)))") }
        var reporter = Reporter(kinds: OpKind.allCases.count)
        var lastProgress = monotonicNanos()
        var announcedMeasure = false
        while true {
            let now = monotonicNanos()
            if !announcedMeasure && now >= origin {
                announcedMeasure = true
                stop.began()
                onPhase?(config.ops.map { "measuring \($0) operations" }
                         ?? "measuring for \(Distribution.formatDuration(Double(config.duration)))")
            }
            if control.finished.wait(timeout: .now() + .milliseconds(200)) == .success {
                var remaining = config.threads - 1
                while remaining > 0 {
                    control.finished.wait()
                    remaining -= 1
                }
                break
            }
            reporter.absorb(control.mailbox.withLock { m in defer { m.removeAll() }; return m })
            if now &- lastProgress >= 1_000_000_000 && now > origin {
                lastProgress = now
                if let oracle, stop.isMeasuring { stop.checkMemory(of: oracle, limit: config.checkMemory) }
                let (rate, p99, errors) = reporter.recent(before: ThreadRecorder.intervalIndex(now, origin: origin))
                onProgress?(Double(now - origin) / 1e9, rate, p99, errors)
            }
        }
        reporter.absorb(control.mailbox.withLock { m in defer { m.removeAll() }; return m })
        let end = monotonicNanos()
        if let faults {
            faultsDone.store(true, ordering: .releasing)
            controllerDone.wait()
            faults.set(Array(repeating: NodeCondition(), count: config.core.nodes))  // faults heal
        }
        // The measured phase lasted until the first thread stopped issuing (the drain after it is not measured time);
        // open loop, the last, and with --ops one interval of the schedule past the last request sent, which may be
        // later than the drain's end (``RunConfig/openLoopEnd(now:lastSent:)``).
        let stopAt = control.stopAt.load(ordering: .acquiring)
        let stoppedAt = stopAt > origin ? stopAt : end
        var result = Runner.result(config: config, reporter: reporter, timeline: timeline,
                                   measured: monotonicNanos() &- origin, duration: stoppedAt &- origin,
                                   control: control)
        result.startTime = wallStart
        result.stoppedEarly = stop.reason
        let shares = control.balancer.shares.withLock { $0 }
        if shares.allSatisfy({ $0 > 0 }) { result.threadShares = shares }  // (set by threads that balanced)
        if let rate = config.rate {
            result.generatorBound = result.behindSchedule(rate: rate, lagLimit: config.generatorBoundLag)
        }
        if let cluster {
            onPhase?("checking for lost writes")
            cluster.stop()
            result.settleRounds = cluster.settle()
            let divergence = cluster.divergence()
            (result.divergentKeys, result.divergentTrees) = (divergence.keys.count, divergence.trees)
            result.counters = cluster.counters
            result.droppedMessages = cluster.droppedMessages
            result.partitionedMessages = cluster.partitionedMessages
            if let oracle, let purged {
                Runner.checkLostWrites(&result, nodes: cluster.nodes, ring: cluster.ring, oracle: oracle,
                                       divergent: divergence.keys, wiped: wiped.withLock { $0 }, purged: purged)
            } else {
                Runner.countSiblings(&result, nodes: cluster.nodes, ring: cluster.ring, divergent: divergence.keys)
            }
        }
        result.pool = pool.statistics().since(poolStart)  // this run's counts (a sweep runs several in one process)
        if leaveForExit {
            if let cluster { _ = Unmanaged.passRetained(cluster) }
            if let oracle { _ = Unmanaged.passRetained(oracle) }
        }
        return result
    }

    /// After quiescence and repair: the acknowledged writes that a read of all n replicas of their key neither
    /// returns nor supersedes (and, with a wipe trace, the losses no wipe explains); siblings per key.
    ///
    /// The replicas of a key not in `divergent` (``Quiescence/divergence(of:ring:n:)``) hold the same versions, so
    /// its primary alone is read: a third of the cold lookups at n = 3. Were a divergent key missing from the set,
    /// the check would read fewer versions and report more losses, never fewer.
    static func checkLostWrites(_ result: inout RunResult, nodes: [Node], ring: Ring, oracle: Oracle,
                                divergent: Set<UInt64>, wiped: Set<UInt64>, purged: PurgedDeletes) {
        let n = result.config.core.n
        var keysSeen = 0, versionsSeen = 0, maxSiblings = 0
        let purged = purged.byKey.withLock { $0 }
        let losses = oracle.lostWrites { key in
            let ids = heldWrites(key, nodes: nodes, ring: ring, n: n, divergent: divergent, maxSiblings: &maxSiblings)
            keysSeen += 1
            versionsSeen += distinctCount(ids)
            return ids
        } purged: { purged[$0] ?? [] }
        result.maxSiblings = maxSiblings
        result.meanSiblings = keysSeen > 0 ? Double(versionsSeen) / Double(keysSeen) : 0
        result.lostWrites = losses.count
        result.lostWriteSamples = Array(losses.sorted { ($0.key, $0.write) < ($1.key, $1.write) }.prefix(20))
        if result.config.traceWipes { result.unexplainedLosses = oracle.unexplained(losses, by: wiped).count }
    }

    /// The write ids a read of all replicas of `key` returns (its primary alone when the replicas agree), the
    /// most versions one of them holds folded into `maxSiblings`.
    static func heldWrites(_ key: UInt64, nodes: [Node], ring: Ring, n: Int, divergent: Set<UInt64>,
                           maxSiblings: inout Int) -> [UInt64] {
        var ids: [UInt64] = []
        ids.reserveCapacity(2 * n)
        let replicas = ring.replicas(of: Key(key), n: n)
        for node in replicas.prefix(divergent.contains(key) ? n : 1) {
            let state = nodes[Int(node)].store.state(of: key)
            maxSiblings = max(maxSiblings, state.count)
            for v in state {
                if let id = v.writeID { ids.append(id) }
            }
        }
        return ids
    }

    /// Distinct ids (a handful: a quadratic count beats hashing them into a Set).
    static func distinctCount(_ ids: [UInt64]) -> Int {
        var count = 0
        for i in ids.indices where !ids[..<i].contains(ids[i]) { count += 1 }
        return count
    }

    /// `--consistency-check off`: the versions per key at the end without the oracle, over every key some node
    /// holds (the check reads the keys acknowledged writes made, the same keys but for writes never acknowledged).
    static func countSiblings(_ result: inout RunResult, nodes: [Node], ring: Ring, divergent: Set<UInt64>) {
        var keys = Set<UInt64>()
        for node in nodes { keys.formUnion(node.store.keys) }
        var maxSiblings = 0, versionsSeen = 0
        for key in keys {
            versionsSeen += distinctCount(heldWrites(key, nodes: nodes, ring: ring, n: result.config.core.n,
                                                     divergent: divergent, maxSiblings: &maxSiblings))
        }
        result.maxSiblings = maxSiblings
        result.meanSiblings = keys.isEmpty ? 0 : Double(versionsSeen) / Double(keys.count)
    }

    /// The deletes whose tombstones the purge rule removed, by key, as the nodes report them (from their workers in
    /// real time): the lost-write check counts them applied.
    final class PurgedDeletes: Sendable {
        let byKey = Locked<[UInt64: [UInt64]]>([:])

        /// Watches the stores of `nodes` (before they start).
        init(watching nodes: [Node]) {
            for node in nodes {
                node.store.onPurge = { [byKey] key, tombstones in
                    byKey.withLock { byKey in
                        // Each replica purges the same tombstones, mostly one after another: listed once.
                        for id in tombstones.compactMap(\.writeID) where byKey[key]?.last != id {
                            byKey[key, default: []].append(id)
                        }
                    }
                }
            }
        }
    }

    /// What every runtime reports the same way once its measured phase is over: totals and intervals (with
    /// nodes up per second from the fault timeline), staleness, schedule lag. `measured`: how long the measured
    /// phase ran, drain included (ns); `duration`: the measured time proper.
    static func result(config: RunConfig, reporter: consuming Reporter, timeline: [(at: UInt64, conditions: [NodeCondition])],
                       measured: UInt64, duration: UInt64, control: RunControl) -> RunResult {
        let up = nodesUpPerSecond(timeline, end: measured)
        var result = RunResult(config: config, totals: reporter.totals,
                               intervals: reporter.intervalRecords(nodes: config.core.nodes,
                                                                   nodesUp: { $0 < up.count ? up[$0] : nil }))
        // The changes within the measured phase (its state at time 0 included): one after it ended is not the run's.
        result.faultTimeline = timeline.filter { $0.at == 0 || $0.at < measured }
        result.warmupSeconds = Double(config.warmup) / 1e9
        result.durationSeconds = Double(duration) / 1e9
        result.staleReads = reporter.staleReads
        result.staleK = reporter.staleK
        result.maxK = reporter.maxK
        result.scheduleLag = control.lags.withLock { $0 }
        result.expiredRequests = control.expired.load(ordering: .relaxed)
        result.updates = control.updates.load(ordering: .relaxed)
        result.blindUpdates = control.blindUpdates.load(ordering: .relaxed)
        if config.rate != nil { result.achievedRate = result.rate(result.all.attempted) }
        return result
    }
}
