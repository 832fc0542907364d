import BufferPool
import Foundation
import Histogram
import ReplicationCore
import Synchronization
import SyncPrimitives

/// The context a thread last saw for a key, and the writes it stood for: a read's (`saw`), or one write kept inline
/// (`own`: the thread's own write, or the one version a read returned; an array of one id was an allocation and a
/// free on every write and most reads).
struct CachedContext {
    var context: CausalContext
    var saw: [UInt64]
    var own: UInt64 = 0

    init(context: CausalContext, saw: [UInt64]) {
        self.context = context
        self.saw = saw
    }

    init(context: CausalContext, own: UInt64) {
        self.context = context
        saw = []
        self.own = own
    }
}

/// The bounded per-thread context cache: two-way set-associative, least recently used way evicted. A key that is
/// used often stays; cold keys only ever evict within their own set, never a hot key elsewhere.
struct ContextCache {
    struct Way {
        var key: UInt64 = .max  // .max: empty
        var value = CachedContext(context: .empty, saw: [])
    }

    /// Empty for capacity 0: nothing is kept, every update is blind.
    var ways: [Way]
    var recent: [UInt8]  // per set: the way used last
    let mask: Int

    init(capacity: Int) {
        let slots = Self.slots(capacity)
        ways = Array(repeating: Way(), count: slots)
        recent = Array(repeating: 0, count: slots / 2)
        mask = slots / 2 - 1
    }

    /// The ways a cache of `capacity` keys allocates, all at once: two a set, a power of two of sets (0: none).
    static func slots(_ capacity: Int) -> Int {
        capacity == 0 ? 0 : max(2, 1 << (Int.bitWidth - (capacity - 1).leadingZeroBitCount))
    }

    @inline(__always)
    func set(of key: UInt64) -> Int { Int(truncatingIfNeeded: Hash64.mix(key)) & mask }

    /// The way that holds `key`'s context, if any (read it there: a copy of the entry is a retain and a release
    /// of each of its arrays).
    mutating func way(of key: UInt64) -> Int? {
        if ways.isEmpty { return nil }
        let s = set(of: key)
        for w in 0..<2 where ways[s * 2 + w].key == key {
            recent[s] = UInt8(w)
            return s * 2 + w
        }
        return nil
    }

    mutating func store(_ key: UInt64, _ value: consuming CachedContext) {
        if ways.isEmpty { return }
        let s = set(of: key)
        var way = ways[s * 2].key == key ? 0 : (ways[s * 2 + 1].key == key ? 1 : -1)
        if way < 0 { way = 1 - Int(recent[s]) }
        ways[s * 2 + way] = Way(key: key, value: value)
        recent[s] = UInt8(way)
    }
}

/// One request in flight.
struct Slot {
    var kind: OpKind = .read
    var key: UInt64 = 0
    /// Intended start (open loop: the schedule; closed loop: when it was sent), ns.
    var intended: UInt64 = 0
    var sent: UInt64 = 0
    var writeID: UInt64 = 0
    /// rmw: 0 while reading, 1 while writing.
    var stage: UInt8 = 0
    /// Bumped each time the slot is reused: a request's tag is (generation, slot), so a reply that comes after the
    /// client gave up on its request is recognized and ignored.
    var generation: UInt32 = 0
    var active = false
}

/// One load-generator thread: loads its share of the records, then runs the workload closed or open loop against
/// its target, recording latencies and consulting the oracle.
final class ThreadDriver: @unchecked Sendable {
    let thread: Int
    let config: RunConfig
    let control: RunControl
    let oracle: Oracle?
    let pool: BufferPool
    let cap: Int
    let mix: OperationMix
    let chooser: KeyChooser
    var rng: Xoshiro
    var slots: [Slot]
    var free: [Int]
    var contexts: ContextCache
    var nextWrite: UInt64 = 0
    var lag = makeLatencyHistogram()
    /// How long a thread waits for a reply before it counts the request failed: the coordinator's own timeout
    /// answers first unless the coordinator itself went down (injected faults). In real time it is always on, so
    /// that a reply lost for any reason shows as a timeout, never as a run that does not end; the simulator arms
    /// it only with faults (it costs an event per request there, and its stall check catches a lost reply).
    /// (Decided once: the simulator asks on every request, and a string comparison each time was 0.3% of a run.)
    let clientTimeout: UInt64?
    /// Requests a reply asks for (the write half of an rmw), sent once the poll is done.
    var followUps: [ClientRequest] = []
    /// Open loop against the cluster: how long a request may wait for a free slot before it fails unsent
    /// (``expire``): the coordinator's `--timeout`. The noop target has no timeout, and keeps wrk2's model.
    let slotDeadline: UInt64?
    /// Open loop: measured requests that waited `--timeout` for a free slot and failed unsent (``expire``).
    var expired = 0
    /// Measured updates and deletes sent, and those of them that carried no context (the key not in ``contexts``).
    var updates = 0
    var blindUpdates = 0
    /// Replies carry contexts worth keeping for the key's next update: the cluster's (the noop target's are empty).
    let keepsContexts: Bool

    init(thread: Int, config: RunConfig, control: RunControl, oracle: Oracle?, pool: BufferPool) {
        self.thread = thread
        self.config = config
        self.control = control
        self.oracle = oracle
        self.pool = pool
        keepsContexts = config.target == .cluster
        clientTimeout = config.target == .cluster && (config.clock == "real" || !config.faults.isEmpty)
            ? config.clientTimeout : nil
        slotDeadline = config.target == .cluster ? config.core.timeout : nil
        let base = config.concurrency / config.threads
        cap = max(1, base + (thread < config.concurrency % config.threads ? 1 : 0))
        mix = OperationMix(proportions: config.proportions)
        chooser = KeyChooser(distribution: config.distribution, keys: config.keys)
        rng = Xoshiro.derive(config.seed, 0x4C4F_4144 &+ UInt64(thread))
        // Room for every slot: a closed-loop thread's share can grow (``SlotBalancer``).
        let room = max(cap, config.concurrency)
        slots = Array(repeating: Slot(), count: room)
        contexts = ContextCache(capacity: config.contextCache)
        free = Array((0..<room).reversed())
    }

    @inline(__always)
    func newWriteID() -> UInt64 {
        nextWrite += 1
        return UInt64(thread + 1) << 48 | nextWrite
    }

    /// A value of `--value-size` bytes (a delete's tombstone: 8) starting with the id of the write that makes it.
    @inline(__always)
    func value(id: UInt64, tombstone: Bool = false) -> PoolBuffer {
        let size = tombstone ? 8 : max(8, Int(config.valueSize.sample(&rng)))
        let b = pool.acquireShareable(count: size)
        b.store(id)
        return b
    }

    func run<T: RequestTarget>(target: T) {
        var target = target
        load(&target)
        let origin = waitForOrigin(target)
        measure(&target, origin: origin)
        handOver()
        target.finish()
    }

    /// The noop target, optionally stalling in a window of the measured phase.
    func run(target: NoopTarget, stall: (at: UInt64, for: UInt64)?) {
        var target = target
        load(&target)
        let origin = waitForOrigin(target)
        if let stall { target = NoopTarget(pool: pool, stall: (origin &+ stall.at)...(origin &+ stall.at &+ stall.for)) }
        measure(&target, origin: origin)
        handOver()
    }

    /// After the measured phase: what the run's result takes from this thread besides its recorder's samples.
    func handOver() {
        control.lags.withLock { $0.add(lag) }
        control.expired.add(expired, ordering: .relaxed)
        control.updates.add(updates, ordering: .relaxed)
        control.blindUpdates.add(blindUpdates, ordering: .relaxed)
    }

    func waitForOrigin<T: RequestTarget>(_ target: T) -> UInt64 {
        control.loaded.add(1, ordering: .releasing)
        var origin: UInt64 = 0
        while origin == 0 {
            origin = control.startMeasured.load(ordering: .acquiring)
            if origin == 0 { target.idle(until: monotonicNanos() &+ 200_000) }
        }
        return origin
    }

    /// Inserts this thread's share of the records (keys thread, thread + T, …), `cap` in flight.
    func load<T: RequestTarget>(_ target: inout T) {
        var next = UInt64(thread)
        let step = UInt64(config.threads)
        var inFlight = 0
        var ids: [UInt64: UInt64] = [:]
        while next < UInt64(config.keys) || inFlight > 0 {
            while inFlight < cap && next < UInt64(config.keys) {
                let (id, value) = beginInsert(next)
                ids[next] = id
                target.submit(ClientRequest(tag: next, op: .put, key: next, value: value), now: monotonicNanos())
                inFlight += 1
                next += step
            }
            let n = target.poll(now: monotonicNanos()) { reply in
                inFlight -= 1
                if reply.status == .ok, let id = ids.removeValue(forKey: reply.key) {
                    inserted(reply.key, id: id, context: reply.context, at: monotonicNanos())
                } else {
                    ids[reply.key] = nil
                }
            }
            if n == 0 { target.wait(until: monotonicNanos() &+ 1_000_000) }
        }
    }

    /// A record's insert begins: its write id (told to the oracle) and its value.
    @inline(__always)
    func beginInsert(_ key: UInt64) -> (id: UInt64, value: PoolBuffer) {
        let id = newWriteID()
        oracle?.wrote(id: id, key: key, saw: [])
        return (id, value(id: id))
    }

    /// A record's insert was acknowledged at `time` with `context`: the oracle and the context cache learn it.
    @inline(__always)
    func inserted(_ key: UInt64, id: UInt64, context: CausalContext, at time: UInt64) {
        oracle?.acknowledged(id: id, key: key, at: time)
        remember(key, CachedContext(context: context, own: id))
    }

    @inline(__always)
    func remember(_ key: UInt64, _ c: consuming CachedContext) { contexts.store(key, c) }

    /// Start of the measured phase.
    var origin: UInt64 = 0

    /// Open loop: when this thread's first request is due, its schedule starting at `start` with `period` between
    /// requests (`--threads` / `--rate`). The threads' schedules interleave into one at the total rate: constant
    /// arrivals start 1 / rate apart, Poisson ones with a draw like every later gap. (All starting at once, the
    /// threads sent a burst of one request each, and a 1 s run at 1 op/s counted two.)
    func firstIntended(from start: UInt64, period: Double) -> Double {
        if config.arrival == .poisson { return Double(start) - period * log(1 - rng.nextDouble()) }
        return Double(start) + period * Double(thread) / Double(config.threads)
    }

    func measure<T: RequestTarget>(_ target: inout T, origin: UInt64) {
        self.origin = origin
        var recorder = ThreadRecorder(thread: thread, mailbox: control.mailbox, origin: origin, now: monotonicNanos())
        let warmStart = origin &- config.warmup
        let end = origin &+ config.duration
        // Open loop: each thread keeps its share of the rate on its own schedule.
        let period = config.rate.map { Double(config.threads) * 1e9 / $0 }
        // The measured operations this thread has taken from --ops and not issued yet (no --ops: no end), from a
        // pool common to the threads. Closed loop, 16 at a time as they go. Open loop, one per measured arrival as
        // it comes due, so the measured phase holds the first --ops arrivals of the threads' combined schedule and
        // ends one interval after the last of them, as in the simulator (``Simulation/openOpsLeft``). (A share per
        // thread ended it after the slowest thread's share; taking 16 at a time, the first thread to find the pool
        // empty ended it while others still held operations due later: 200 operations at 100 ops/s measured 1.91 s.)
        var opsTaken = config.ops == nil ? Int.max : 0
        /// Whether one more operation may be issued: a measured one only while --ops lasts.
        func mayIssue(measured: Bool) -> Bool {
            guard measured else { return true }
            if opsTaken == 0 { opsTaken = control.takeOps(period == nil ? 16 : 1) }
            return opsTaken > 0
        }
        /// Open loop: whether --ops is all taken (looked at, not taken: the next arrival takes its own when due).
        func opsGone() -> Bool { opsTaken == 0 && control.opsLeft.load(ordering: .relaxed) <= 0 }
        var nextIntended = period.map { firstIntended(from: warmStart, period: $0) } ?? Double(warmStart)
        var slotFreedAt: UInt64 = 0
        var inFlight = 0
        var lastSent: UInt64 = 0  // open loop: when the last measured request was sent (or expired unsent)
        var stopping = false
        var drainDeadline: UInt64 = 0
        var lastSweep = monotonicNanos()
        // This thread's share of --concurrency; closed loop, on threads that host the cluster's workers, rebalanced
        // with the other threads'. (Threads that only run clients do alike work; moving slots between them on
        // their scheduling noise cost a tenth of the throughput with 4 threads on 2 cores.)
        let balancing = period == nil && config.threads > 1 && target.hostsWorker
        var share = SlotBalancer.Share(thread: thread, cap: cap, now: lastSweep, idle: target.idleNanos)

        while true {
            var now = monotonicNanos()
            // Stop issuing when the measured phase is over.
            if !stopping {
                // (A stop asked for ends the measured phase now: Ctrl-C, or the check's memory limit.)
                let done = control.stop.isRequested || (config.ops == nil ? now >= end
                    : period == nil ? !mayIssue(measured: now >= origin) : opsGone())
                if done {
                    stopping = true
                    control.stop.ended()
                    drainDeadline = now &+ config.core.timeout &+ 5_000_000_000
                    // Closed loop, the first thread to stop ends the measured phase; open loop, the last (see
                    // `Simulation.stop`), with --ops one interval after the last measured send.
                    if period != nil {
                        _ = control.stopAt.max(config.openLoopEnd(now: now, lastSent: lastSent), ordering: .relaxed)
                    } else {
                        _ = control.stopAt.compareExchange(expected: 0, desired: now, ordering: .acquiringAndReleasing)
                    }
                }
            }
            if stopping && (inFlight == 0 || now >= drainDeadline) { break }

            // Issue.
            if !stopping {
                if let period {
                    while nextIntended <= Double(now) {
                        let intended = UInt64(nextIntended)
                        let expires = waitedPastTimeout(intended: intended, slotFreedAt: slotFreedAt)
                        // (A slot first, then --ops: a thread takes operations only when it can use them.)
                        guard expires || inFlight < share.cap, mayIssue(measured: intended >= origin) else { break }
                        if expires {
                            expire(intended: intended, recorder: &recorder, now: now)
                        } else {
                            recordLag(intended: intended, slotFreedAt: slotFreedAt, now: now)
                            issue(&target, intended: intended, now: now)
                            inFlight += 1
                        }
                        if intended >= origin { (opsTaken, lastSent) = (opsTaken - 1, now) }
                        nextIntended += config.arrival == .poisson ? -period * log(1 - rng.nextDouble()) : period
                    }
                } else {
                    while inFlight < share.cap && mayIssue(measured: now >= origin) {
                        issue(&target, intended: now, now: now)
                        if now >= origin { opsTaken -= 1 }
                        inFlight += 1
                    }
                }
            }

            // Give up on requests nobody answers (their coordinator went down): the client's own timeout.
            now = monotonicNanos()
            let wasFull = inFlight >= share.cap
            if inFlight > 0 && now &- lastSweep > 10_000_000, let clientTimeout {
                lastSweep = now
                for i in slots.indices where slots[i].active && now &- slots[i].sent > clientTimeout {
                    let reply = ClientReply(tag: UInt64(slots[i].generation) << 32 | UInt64(i), op: .get,
                                            key: slots[i].key, status: .timeout, coordinator: .client(thread))
                    if complete(reply, recorder: &recorder, now: now) { inFlight -= 1 }
                }
            }

            // Collect.
            if balancing && !stopping { share.update(control.balancer, now: now, idle: target.idleNanos, inFlight: inFlight) }
            let completed = target.poll(now: now) { reply in
                if complete(reply, recorder: &recorder, now: now) { inFlight -= 1 }
            }
            for request in followUps { target.submit(request, now: now) }
            followUps.emptyKeepingCapacity()
            if wasFull && inFlight < share.cap { slotFreedAt = now }
            recorder.tick(now: now)
            if completed == 0 {
                var wake = now &+ 1_000_000
                if period != nil && !stopping && inFlight < share.cap { wake = min(wake, UInt64(max(nextIntended, 0))) }
                if wake > now { target.wait(until: wake) }
            }
        }
        recorder.flush()
        if balancing { control.balancer.shares.withLock { $0[thread] = share.cap + share.owed } }
    }

    /// Open loop: whether the request meant to start at `intended` has waited for a slot (all `--concurrency` of
    /// them busy) for as long as ``slotDeadline`` by `slotFreedAt`, when one came free. The wait counts up to
    /// that moment only, so a request that is late because the generator itself fell behind its schedule
    /// (generator-bound) never expires.
    @inline(__always)
    func waitedPastTimeout(intended: UInt64, slotFreedAt: UInt64) -> Bool {
        guard let slotDeadline else { return false }
        return slotFreedAt >= intended &+ slotDeadline
    }

    /// Fails, unsent, one operation of the mix that waited past its deadline for a slot (``waitedPastTimeout``):
    /// a client's timeout runs in its own queue too. Sending it late would measure the cluster as it is when the
    /// request finally leaves, and a run through a total outage read as available. It counts as a failed
    /// operation of its kind (attempted, not ok), like a timeout at the coordinator.
    func expire(intended: UInt64, recorder: inout ThreadRecorder, now: UInt64) {
        let kind = mix.next(&rng)
        if intended >= origin { expired += 1 }
        recorder.record(kind, latency: config.core.timeout, ok: false, now: phaseTime(intended: intended, now: now))
    }

    /// Open loop, a request sent at `now`: how late against its schedule, not counting a wait for a slot (that is
    /// the system's, and shows in its latency). Measured requests only.
    @inline(__always)
    func recordLag(intended: UInt64, slotFreedAt: UInt64, now: UInt64) {
        let lateFrom = max(intended, slotFreedAt)
        if intended >= origin { lag.record(now > lateFrom ? now - lateFrom : 0) }
    }

    /// When an operation meant to start at `intended` is recorded as finishing at `now`: an operation belongs to
    /// the phase it was meant to start in, so one begun in the warm-up stays out of the totals even if it
    /// finishes after the measured phase began.
    @inline(__always)
    func phaseTime(intended: UInt64, now: UInt64) -> UInt64 { intended < origin ? min(now, origin &- 1) : now }

    /// Sends one operation of the mix; returns the slot it occupies.
    @inline(__always)
    @discardableResult
    func issue<T: RequestTarget>(_ target: inout T, intended: UInt64, now: UInt64) -> Int {
        let slot = free.removeLast()
        let kind = mix.next(&rng)
        let key: UInt64
        if kind == .insert {
            key = control.insertCounter.add(1, ordering: .relaxed).oldValue
        } else {
            key = chooser.next(&rng, recordCount: control.insertCounter.load(ordering: .relaxed))
        }
        let generation = slots[slot].generation &+ 1
        slots[slot] = Slot(kind: kind, key: key, intended: intended, sent: now, generation: generation, active: true)
        let tag = UInt64(generation) << 32 | UInt64(slot)
        switch kind {
        case .read, .rmw:
            target.submit(ClientRequest(tag: tag, op: .get, key: key), now: now)
        case .update, .insert, .delete:
            let id = newWriteID()
            slots[slot].writeID = id
            var context = CausalContext.empty
            let counted = kind != .insert && intended >= origin  // (an update or delete of the measured phase)
            if counted { updates += 1 }
            if kind != .insert, let way = contexts.way(of: key) {
                let own = contexts.ways[way].value.own
                if own != 0 {
                    oracle?.wrote(id: id, key: key, sawOne: own, delete: kind == .delete, at: now)
                } else {
                    oracle?.wrote(id: id, key: key, saw: contexts.ways[way].value.saw, delete: kind == .delete, at: now)
                }
                context = contexts.ways[way].value.context
            } else {
                if counted { blindUpdates += 1 }
                oracle?.wrote(id: id, key: key, saw: [], delete: kind == .delete, at: now)
            }
            let op: ReplicationCore.Operation = kind == .delete ? .delete : .put
            target.submit(ClientRequest(tag: tag, op: op, key: key, value: value(id: id, tombstone: kind == .delete),
                                        context: context),
                          now: now)
        }
        return slot
    }

    /// Handles a reply; returns true when the operation is finished (its slot free again).
    @inline(__always)
    func complete(_ reply: ClientReply, recorder: inout ThreadRecorder, now: UInt64) -> Bool {
        let index = Int(reply.tag & 0xFFFF_FFFF)
        let slot = slots[index]
        guard slot.active, slot.generation == UInt32(truncatingIfNeeded: reply.tag >> 32) else {
            // Late: the client already gave up on this request.
            Siblings.release(reply.versions, pool: pool)
            return false
        }
        let ok = reply.status == .ok
        switch slot.kind {
        case .read:
            if ok, let oracle {
                let k: Int
                if reply.versions.count == 1, let id = reply.versions.withUnsafeBufferPointer({ $0[0].writeID }) {
                    k = oracle.missed(key: slot.key, start: slot.sent, returned: CollectionOfOne(id))
                    remember(slot.key, CachedContext(context: reply.context, own: id))
                } else {
                    let ids = returnedIDs(reply.versions, key: slot.key, start: slot.sent, oracle: oracle)
                    k = oracle.missed(key: slot.key, start: slot.sent, returned: ids)
                    remember(slot.key, CachedContext(context: reply.context, saw: ids))
                }
                if k > 0 && slot.intended >= origin { recorder.recordStale(k: k) }
            } else if ok && keepsContexts {
                remember(slot.key, CachedContext(context: reply.context, saw: []))  // (no oracle: no write ids)
            }
            Siblings.release(reply.versions, pool: pool)
        case .rmw where slot.stage == 0:
            if ok {
                // Read done: write back with the context it returned, as one operation.
                let ids = oracle.map { returnedIDs(reply.versions, key: slot.key, start: slot.sent, oracle: $0) } ?? []
                Siblings.release(reply.versions, pool: pool)
                let id = newWriteID()
                slots[index].stage = 1
                slots[index].writeID = id
                slots[index].sent = now
                oracle?.wrote(id: id, key: slot.key, saw: ids, at: now)
                followUps.append(ClientRequest(tag: reply.tag, op: .put, key: slot.key, value: value(id: id),
                                               context: reply.context))
                return false
            }
            Siblings.release(reply.versions, pool: pool)
        default:
            if ok {
                oracle?.acknowledged(id: slot.writeID, key: slot.key, at: now)
                if keepsContexts { remember(slot.key, CachedContext(context: reply.context, own: slot.writeID)) }
            } else if reply.isHeldNowhere {
                oracle?.refused(id: slot.writeID, key: slot.key)
            }
        }
        recorder.record(slot.kind, latency: now > slot.intended ? now - slot.intended : 0, ok: ok,
                        now: phaseTime(intended: slot.intended, now: now))
        slots[index].active = false
        free.append(index)
        return true
    }

}

/// The writes a read that began at `start` returned: a read that found the key empty returned its deletes
/// (``Oracle/deletes(of:liveAt:)``: their tombstones were purged).
func returnedIDs(_ versions: [Version], key: UInt64, start: UInt64, oracle: Oracle) -> [UInt64] {
    versions.isEmpty ? oracle.deletes(of: key, liveAt: start) : writeIDs(versions)
}

/// The write ids of the versions, read in place (iterating the versions copied each, a retain and a release of
/// its context).
func writeIDs(_ versions: [Version]) -> [UInt64] {
    versions.withUnsafeBufferPointer { vs in
        var ids: [UInt64] = []
        ids.reserveCapacity(vs.count)
        for i in vs.indices { if let id = vs[i].writeID { ids.append(id) } }
        return ids
    }
}

extension Version {
    /// The id of the write that made this version: every value the load generator writes starts with it.
    @inline(__always)
    var writeID: UInt64? {
        guard let v = value, v.count >= 8 else { return nil }
        return v.load(as: UInt64.self)
    }
}
