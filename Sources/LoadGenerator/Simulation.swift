import BufferPool
import ClusterRuntime
import Foundation
import ReplicationCore
import SyncPrimitives

/// `--clock virtual`: the run in deterministic virtual time. The same nodes and coordinators (in a
/// ``VirtualCluster``), the same load-generator threads' logic (``ThreadDriver``'s issue and completion, its
/// context cache, the oracle, the recorders) and the same faults and reports; every figure is virtual, so the same
/// seed gives the same summary.csv and timeseries.csv byte for byte.
final class Simulation {
    let config: RunConfig
    let pool: BufferPool
    let cluster: VirtualCluster
    let control: RunControl
    let oracle: Oracle?
    /// The load threads' drivers, called once per request (``Unretained``).
    let driverRefs: Unretained<ThreadDriver>
    var drivers: [ThreadDriver] { driverRefs.objects }
    /// Per thread; started when the run's phases are known.
    let recorders: FixedArray<ThreadRecorder>
    /// Takes the recorders' finished seconds once a virtual second (``absorb()``), so that they are packed as the
    /// run goes, not held whole to its end.
    var reporter = Reporter(kinds: OpKind.allCases.count)
    var nextAbsorb: UInt64 = 0
    let targets: FixedArray<SimTarget>
    /// Per thread (the ``FixedArray``s too: each request writes several of these).
    let inFlight: FixedArray<Int>
    var wiped = Set<UInt64>()
    let purged: Runner.PurgedDeletes
    let timeline: [(at: UInt64, conditions: [NodeCondition])]

    /// Measured phase.
    var origin: UInt64 = 0
    var end: UInt64 = 0
    var stopAt: UInt64 = 0
    let stopping: FixedArray<Bool>
    let measuredIssued: FixedArray<Int>
    /// Closed loop with --ops: each thread's share.
    let opsShare: [Int?]
    /// Open loop with --ops: the measured arrivals not yet come due, over all threads. Each takes one as it comes
    /// due — in virtual time in the order of the threads' combined schedule — so the measured phase holds exactly
    /// the first --ops arrivals of that schedule and ends one interval after the last (``stop(_:)``). A share per
    /// thread ended it after the slowest thread's share: with Poisson arrivals the largest of the threads' gamma
    /// sums, ~0.25% long at 100,000 operations over two threads and more at fewer, so the rate came out low.
    var openOpsLeft = Int.max
    /// Open loop: when each thread last sent (or expired) a measured request.
    let lastSent: FixedArray<UInt64>
    let nextIntended: FixedArray<Double>
    let slotFreedAt: FixedArray<UInt64>
    var period: Double?
    /// Open loop: the time of each thread's pending wake-up (0: none).
    let wakeAt: FixedArray<UInt64>
    /// Virtual time stopped advancing (operations that take no time, over a duration): the run was cut short.
    var stalled = false
    /// Virtual time stood still for 20,000,000 events while nothing completed in zero time: a bug, not the input.
    var spun = false
    /// Closed loop: operations finished at the current instant, and how many make a stall when the loop waits
    /// for time to pass, over a `--duration` or before the measured phase (``run()``; `Int.max`, open loop: never).
    var replyInstant: UInt64 = .max
    var repliesAtInstant = 0
    let zeroTimeReplies: Int
    /// This thread's pool counts when the run began: the run reports its own (a sweep runs several in one process).
    var poolStart = BufferPoolStatistics()

    /// Wake-up tokens: kind in the top byte.
    static let issueToken: UInt64 = 1 << 56
    static let timeoutToken: UInt64 = 2 << 56
    /// The measured phase begins: from then a stop asked for (Ctrl-C) ends it.
    static let measureToken: UInt64 = 5 << 56

    init(config: RunConfig, pool: BufferPool, stop: StopRequest = StopRequest()) {
        self.config = config
        self.pool = pool
        control = RunControl(keys: config.keys, threads: config.threads, ops: nil, stop: stop)
        oracle = config.checksConsistency
            ? Oracle(shards: 16, retention: config.oracleRetention, deleteGrace: config.oracleDeleteGrace,
                     singleThreaded: true) : nil
        cluster = VirtualCluster(
            options: ClusterOptions(core: config.core, workers: 1, clients: config.threads, delays: config.delays,
                                    drop: config.drop, seed: config.seed, pool: pool),
            faults: config.faults, serviceTime: config.serviceTime)
        let horizon = config.ops == nil ? config.duration : max(config.duration, 3_600_000_000_000)
        timeline = config.faults.isEmpty ? [] : config.faults.timeline(nodes: config.core.nodes, horizon: horizon, seed: config.seed)
        let t = config.threads
        inFlight = FixedArray(repeating: 0, count: t)
        stopping = FixedArray(repeating: false, count: t)
        measuredIssued = FixedArray(repeating: 0, count: t)
        opsShare = (0..<t).map { config.rate == nil ? config.opsShare(of: $0) : nil }
        if config.rate != nil, let ops = config.ops { openOpsLeft = ops }
        lastSent = FixedArray(repeating: 0, count: t)
        nextIntended = FixedArray(repeating: 0, count: t)
        slotFreedAt = FixedArray(repeating: 0, count: t)
        period = config.rate.map { Double(t) * 1e9 / $0 }
        wakeAt = FixedArray(repeating: 0, count: t)
        zeroTimeReplies = period == nil ? 100 * config.concurrency : .max
        driverRefs = Unretained((0..<t).map { [control, oracle] in
            ThreadDriver(thread: $0, config: config, control: control, oracle: oracle, pool: pool)
        })
        targets = FixedArray((0..<t).map { [cluster] in SimTarget(cluster: cluster, client: $0) })
        recorders = FixedArray((0..<t).map { [control] in
            ThreadRecorder(thread: $0, mailbox: control.mailbox, origin: 0, now: 0)
        })
        purged = Runner.PurgedDeletes(watching: cluster.nodes)
        cluster.onReply = { [unowned self] c, reply in self.reply(c, reply) }
        cluster.onWake = { [unowned self] token in self.wake(token) }
        if config.traceWipes {
            cluster.onWipe = { [unowned self] _, versions in
                self.wiped.formUnion(versions.compactMap(\.writeID))
            }
        }
    }

    func run() -> RunResult {
        poolStart = pool.threadStatistics()
        if config.workload == .visibility { return runVisibility() }
        load()
        // Warm-up, then the measured phase; faults from its start.
        let warmStart = cluster.now
        origin = warmStart &+ config.warmup
        end = origin &+ config.duration
        cluster.schedule(timeline, from: origin)
        cluster.wake(at: origin, token: Simulation.measureToken)
        for t in 0..<config.threads {
            recorders[t].start(origin: origin, now: warmStart)
            drivers[t].origin = origin
            nextIntended[t] = period.map { drivers[t].firstIntended(from: warmStart, period: $0) } ?? Double(warmStart)
            issueMore(t)
        }
        // Over a duration the measured phase ends at `end` exactly. (Open loop, a thread stopped at its first event
        // after it: at 0.5 ops/s that was its next start, and a 5 s run measured 6 s.)
        if config.ops == nil {
            if period == nil {
                cluster.wake(at: end, token: Simulation.issueToken)
            } else {
                for t in 0..<config.threads { cluster.wake(at: end, token: Simulation.issueToken | UInt64(t)) }
            }
        }
        // Operations that take no virtual time (a coordinator answering from its own replica with w = 1 or r = 1,
        // and no client delay) keep a closed loop at one instant: with `--ops` and no warm-up the run still ends
        // (every figure zero time, and said so); a warm-up or a `--duration` never would (`--ops 50000` with the
        // default 2 s warm-up ran on, its replica messages piling up, past 7 GB). ``reply(_:_:)`` marks the run
        // stalled when one instant has seen 100 operations finish per slot: a slot finishes a second one there only
        // if it took no time. (A count of events does not tell: an instant legitimately holds one event or more per
        // slot, 27,586 with 5,000 in flight when a stall released them, so any fixed limit cut large runs short.)
        // Anything else that keeps the clock still ends at 20 million events.
        var stuckSince = cluster.now, stuckEvents = 0
        while busy {
            guard cluster.step() else { break }
            if cluster.now >= nextAbsorb { absorb() }
            if cluster.now == stuckSince {
                stuckEvents += 1
                if stalled { break }
                if stuckEvents > 20_000_000 { (stalled, spun) = (true, true); break }
            } else {
                stuckSince = cluster.now
                stuckEvents = 0
            }
        }
        if stopAt == 0 { stopAt = cluster.now }
        // A run cut short in its warm-up measured nothing: its measured phase is empty, not negative (the difference
        // wrapped to 584 years, and with --failure-rate the report's per-second rows of nodes up took all memory).
        stopAt = max(stopAt, origin)
        return finish()
    }

    /// Replies between two ``checkStop()``s (counted per reply: a count per event cost 0.2% of the instructions).
    static let checkEvery = 16_384
    var repliesUntilCheck = Simulation.checkEvery

    /// Every ``checkEvery`` replies, in the measured phase: the consistency check's memory is held to
    /// `--check-memory`, and a stop asked for stops every thread.
    func checkStop() {
        let request = control.stop
        if let oracle, request.isMeasuring { request.checkMemory(of: oracle, limit: config.checkMemory) }
        if request.isRequested { for t in 0..<config.threads { stop(t) } }
    }

    /// Hands what the recorders finished to the reporter.
    func absorb() {
        reporter.absorb(control.mailbox.withLock { m in defer { m.removeAll() }; return m })
        nextAbsorb = cluster.now &+ 1_000_000_000
    }

    /// The end of every simulated run: recorders flushed, faults healed, repair, the lost-write check, the result.
    func finish() -> RunResult {
        for t in 0..<recorders.count {
            recorders[t].flush()
            drivers[t].handOver()
        }
        // Quiescence: faults heal, repair runs, then the lost-write check.
        cluster.heal()
        cluster.discardAll()
        absorb()
        var result = Runner.result(config: config, reporter: reporter, timeline: timeline, measured: stopAt &- origin,
                                   duration: stopAt &- origin, control: control)
        result.startTime = 0  // virtual: nothing in the run folder depends on the wall clock
        result.stoppedEarly = control.stop.reason
        if let rate = config.rate { result.generatorBound = result.shortOfSchedule(rate: rate) }
        result.settleRounds = Quiescence.settle(cluster.nodes, core: config.core, pool: pool, now: cluster.now)
        result.counters = cluster.counters
        result.droppedMessages = cluster.droppedMessages
        result.partitionedMessages = cluster.partitionedMessages
        let divergence = Quiescence.divergence(of: cluster.nodes, ring: cluster.ring, n: config.core.n)
        (result.divergentKeys, result.divergentTrees) = (divergence.keys.count, divergence.trees)
        if let oracle {
            Runner.checkLostWrites(&result, nodes: cluster.nodes, ring: cluster.ring, oracle: oracle,
                                   divergent: divergence.keys, wiped: wiped, purged: purged)
        } else {
            Runner.countSiblings(&result, nodes: cluster.nodes, ring: cluster.ring, divergent: divergence.keys)
        }
        result.simulatedEvents = cluster.events
        result.virtualTimeStalled = stalled
        result.virtualTimeSpun = spun
        // Counts of this run (its thread's, since it began); jemalloc's figures are the process's.
        result.pool = pool.statistics().withCounts(of: pool.threadStatistics().since(poolStart))
        return result
    }

    // MARK: - The PBS probe (`--workload visibility`)

    /// Per probe offset: ok reads and how many returned the trial's write.
    var probeReads: [Int] = []
    var probeConsistent: [Int] = []
    /// Trials whose write is in flight, and the commit time of each trial whose reads are still due.
    var trialsStarted = 0
    /// Trials to run (`--ops`, else 10,000).
    var trials = 0
    var trialWritesInFlight = 0
    var commits: [Int: (at: UInt64, pending: Int)] = [:]
    static let probeToken: UInt64 = 3 << 56
    static let trialTimeoutToken: UInt64 = 4 << 56
    static let trialKeyBase: UInt64 = 1 << 40

    /// Some thread has requests in flight or has not stopped.
    @inline(__always)
    var busy: Bool {
        for t in 0..<config.threads where inFlight[t] > 0 || !stopping[t] { return true }
        return false
    }

    /// Each trial writes a new version of a fresh key; when the write commits (the client has its reply), a read
    /// is issued at every probe offset after it, each an independent quorum read with its own message delays and
    /// no read repair. `--ops` trials, `--concurrency` trial writes in flight.
    func runVisibility() -> RunResult {
        let probes = config.probeTimes
        probeReads = Array(repeating: 0, count: probes.count)
        probeConsistent = Array(repeating: 0, count: probes.count)
        origin = 0
        cluster.schedule(timeline, from: 0)
        trials = config.ops ?? 10_000
        cluster.onReply = { [unowned self] c, reply in self.visibilityReply(c, reply) }
        cluster.onWake = { [unowned self] token in self.probe(token) }
        control.stop.began()  // (the trials are the measured phase: a Ctrl-C ends them)
        while trialWritesInFlight < config.concurrency && moreTrials() { startTrial() }
        while trialWritesInFlight > 0 || !commits.isEmpty || moreTrials() {
            guard cluster.step() else { break }
            if cluster.now >= nextAbsorb { absorb() }
        }
        stopAt = max(cluster.now, 1)
        var result = finish()
        result.visibility = zip(probes, zip(probeReads, probeConsistent)).map {
            VisibilityPoint(t: $0.0, reads: $0.1.0, consistent: $0.1.1)
        }
        return result
    }

    /// Whether another trial starts: not all have, and no stop was asked for (SIGINT or SIGTERM end the trials;
    /// those under way finish their probes, and the folder holds them).
    func moreTrials() -> Bool {
        guard trialsStarted < trials else {
            control.stop.ended()
            return false
        }
        return !control.stop.isRequested
    }

    func startTrial() {
        let trial = trialsStarted
        trialsStarted += 1
        trialWritesInFlight += 1
        let key = Simulation.trialKeyBase + UInt64(trial)
        let id = Simulation.trialKeyBase << 8 | UInt64(trial)  // a write id no load thread uses
        oracle?.wrote(id: id, key: key, saw: [])
        let value = pool.acquireShareable(count: 8)
        value.store(id)
        commits[trial] = (cluster.now, -1)  // -1: the write is in flight; its start time for now
        // A coordinator that went down never answers: the trial is given up after every probe had its time.
        let deadline = cluster.now &+ 2 * (config.probeTimes.last ?? 0) &+ 4 * config.core.timeout &+ 100_000_000
        cluster.wake(at: deadline, token: Simulation.trialTimeoutToken | UInt64(trial))
        cluster.submit(client: trial % config.threads,
                       ClientRequest(tag: UInt64(trial) << 20, op: .put, key: key, value: value))
    }

    func visibilityReply(_ c: Int, _ reply: ClientReply) {
        let now = cluster.now
        let trial = Int(reply.tag >> 20), probe = Int(reply.tag & 0xFFFFF)
        guard var commit = commits[trial] else {
            Siblings.release(reply.versions, pool: pool)
            return
        }
        if probe == 0 {
            // The trial's write: its reply is the commit.
            trialWritesInFlight -= 1
            recorders[c].record(.insert, latency: now - commit.at, ok: reply.status == .ok, now: now)
            if reply.status == .ok {
                let id = Simulation.trialKeyBase << 8 | UInt64(trial)
                oracle?.acknowledged(id: id, key: Simulation.trialKeyBase + UInt64(trial), at: now)
                commits[trial] = (now, config.probeTimes.count)
                for (i, t) in config.probeTimes.enumerated() {
                    cluster.wake(at: now &+ t, token: Simulation.probeToken | UInt64(trial) << 20 | UInt64(i + 1))
                }
            } else {
                commits[trial] = nil
            }
            if moreTrials() { startTrial() }
        } else {
            let start = commit.at &+ config.probeTimes[probe - 1]
            let ok = reply.status == .ok
            recorders[c].record(.read, latency: now - start, ok: ok, now: now)
            if ok {
                let id = Simulation.trialKeyBase << 8 | UInt64(trial)
                let consistent = reply.versions.contains { $0.writeID == id }
                probeReads[probe - 1] += 1
                if consistent { probeConsistent[probe - 1] += 1 } else { recorders[c].recordStale(k: 1) }
            }
            Siblings.release(reply.versions, pool: pool)
            commit.pending -= 1
            commits[trial] = commit.pending == 0 ? nil : commit
        }
        recorders[c].tick(now: now)
    }

    func probe(_ token: UInt64) {
        if token & (0xFF << 56) == Simulation.trialTimeoutToken {
            let trial = Int(token & 0xFF_FFFF_FFFF)
            if let commit = commits.removeValue(forKey: trial), commit.pending == -1 {
                trialWritesInFlight -= 1
                recorders[trial % config.threads].record(.insert, latency: cluster.now - commit.at, ok: false, now: cluster.now)
                if moreTrials() { startTrial() }
            }
            return
        }
        guard token & (0xFF << 56) == Simulation.probeToken else { return }
        let trial = Int(token >> 20 & 0xF_FFFF_FFFF), probe = Int(token & 0xFFFFF)
        cluster.submit(client: trial % config.threads,
                       ClientRequest(tag: UInt64(trial) << 20 | UInt64(probe), op: .get,
                                     key: Simulation.trialKeyBase + UInt64(trial)))
    }

    // MARK: - Load phase

    /// Every thread's share of the records (key k is thread k mod threads', as in real time), loaded without
    /// messages and without virtual time passing (``VirtualCluster/preload(key:value:)``): the load phase is in no
    /// figure, and through messages 100,000 records cost as many instructions (1.46 G) as 100,000 operations. The
    /// oracle and the thread's context cache learn each insert as from its reply.
    func load() {
        for key in 0..<UInt64(config.keys) {
            let t = Int(key % UInt64(config.threads))
            driverRefs.with(t) { d in
                let (id, value) = d.beginInsert(key)
                d.inserted(key, id: id, context: cluster.preload(key: key, value: value), at: cluster.now)
            }
        }
    }

    // MARK: - Measured phase

    @inline(__always)
    func done(_ t: Int) -> Bool {
        if let share = opsShare[t] { return measuredIssued[t] >= share }
        if period != nil && config.ops != nil { return openOpsLeft <= 0 }
        return cluster.now >= end
    }

    func stop(_ t: Int) {
        guard !stopping[t] else { return }
        stopping[t] = true
        control.stop.ended()
        // Closed loop, the first thread to stop ends the measured phase (a thread with no share of --ops, when
        // there are fewer operations than threads, ends nothing); open loop, the last one: over a duration at its
        // end, with --ops one interval of the schedule after the last measured send (``openOpsLeft``).
        if period != nil {
            stopAt = max(stopAt, config.openLoopEnd(now: cluster.now, lastSent: lastSent[t]))
        } else if opsShare[t] != 0 && stopAt == 0 {
            stopAt = cluster.now
        }
    }

    /// Open loop: a measured request was sent (or expired unsent) now.
    @inline(__always)
    func sentMeasured(_ t: Int) {
        openOpsLeft -= 1
        lastSent[t] = cluster.now
    }

    /// Issues what the schedule allows: closed loop fills the free slots; open loop sends every request whose
    /// intended time has come while a slot is free (one that waited for a slot counts from its intended time).
    func issueMore(_ t: Int) {
        if stopping[t] { return }
        driverRefs.with(t) { issueMore(t, $0) }
    }

    func issueMore(_ t: Int, _ d: ThreadDriver) {
        let now = cluster.now
        if done(t) {
            stop(t)
            return
        }
        if let period {
            while nextIntended[t] <= Double(now) && !done(t) {
                let intended = UInt64(nextIntended[t])
                if d.waitedPastTimeout(intended: intended, slotFreedAt: slotFreedAt[t]) {
                    d.expire(intended: intended, recorder: &recorders[t], now: now)
                    if intended >= origin { sentMeasured(t) }
                } else {
                    guard inFlight[t] < d.cap else { break }
                    d.recordLag(intended: intended, slotFreedAt: slotFreedAt[t], now: now)
                    issue(t, d, intended: intended)
                    if intended >= origin { sentMeasured(t) }
                }
                nextIntended[t] += config.arrival == .poisson ? -period * log(1 - d.rng.nextDouble()) : period
            }
            if done(t) {
                stop(t)
            } else if inFlight[t] < d.cap {
                // One wake-up per thread at a time, for its next intended start: at the first whole nanosecond not
                // before it. (Woken at the one before a fractional start — any Poisson gap, or a rate that does not
                // divide a second — the loop above issued nothing and set the same wake-up again, forever.)
                let due = UInt64(nextIntended[t].rounded(.up))
                if wakeAt[t] != due {
                    wakeAt[t] = due
                    cluster.wake(at: due, token: Simulation.issueToken | UInt64(t))
                }
            }
        } else {
            while inFlight[t] < d.cap && !done(t) { issue(t, d, intended: now) }
            if done(t) { stop(t) }
        }
    }

    func issue(_ t: Int, _ d: ThreadDriver, intended: UInt64) {
        let slot = d.issue(&targets[t], intended: intended, now: cluster.now)
        if intended >= origin { measuredIssued[t] += 1 }
        inFlight[t] += 1
        if let timeout = d.clientTimeout {
            cluster.wake(at: cluster.now &+ timeout,
                         token: Simulation.timeoutToken | UInt64(t) << 40 | UInt64(d.slots[slot].generation) << 16 | UInt64(slot))
        }
    }

    func reply(_ t: Int, _ reply: ClientReply) {
        let now = cluster.now
        repliesUntilCheck -= 1
        if repliesUntilCheck == 0 {
            repliesUntilCheck = Simulation.checkEvery
            checkStop()
        }
        if now == replyInstant {
            repliesAtInstant += 1
            if repliesAtInstant > zeroTimeReplies && (config.ops == nil || now < origin) { stalled = true }
        } else {
            (replyInstant, repliesAtInstant) = (now, 1)
        }
        driverRefs.with(t) { d in
            let wasFull = inFlight[t] >= d.cap
            if d.complete(reply, recorder: &recorders[t], now: now) { inFlight[t] -= 1 }
            for request in d.followUps { targets[t].submit(request, now: now) }
            d.followUps.emptyKeepingCapacity()
            if wasFull && inFlight[t] < d.cap { slotFreedAt[t] = now }
        }
        recorders[t].tick(now: now)
        issueMore(t)
    }

    func wake(_ token: UInt64) {
        switch token & (0xFF << 56) {
        case Simulation.issueToken:
            if period == nil {
                for t in 0..<config.threads { issueMore(t) }  // the end of a closed-loop duration
            } else {
                let t = Int(token & 0xFFFF)
                if cluster.now >= wakeAt[t] { wakeAt[t] = 0 }
                issueMore(t)
            }
        case Simulation.measureToken:
            // (Not at the first check, 16,384 replies in: a Ctrl-C before it quit without a run folder.)
            control.stop.began()
        case Simulation.timeoutToken:
            let t = Int(token >> 40 & 0xFFFF), generation = UInt32(token >> 16 & 0xFF_FFFF), slot = Int(token & 0xFFFF)
            let timedOut: ClientReply? = driverRefs.with(t) { d in
                guard d.slots[slot].active, d.slots[slot].generation & 0xFF_FFFF == generation else { return nil }
                let tag = UInt64(d.slots[slot].generation) << 32 | UInt64(slot)
                return ClientReply(tag: tag, op: .get, key: d.slots[slot].key, status: .timeout, coordinator: .client(t))
            }
            if let timedOut { reply(t, timedOut) }
        default:
            break
        }
    }
}

/// A simulated client's connection: requests go into the virtual cluster at its current time.
struct SimTarget: RequestTarget {
    let cluster: VirtualCluster
    let client: Int
    mutating func submit(_ request: ClientRequest, now: UInt64) { cluster.submit(client: client, request) }
    mutating func poll(now: UInt64, _ body: (ClientReply) -> Void) -> Int { 0 }
    func wait(until deadline: UInt64) {}
}
