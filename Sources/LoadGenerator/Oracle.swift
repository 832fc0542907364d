import ReplicationCore
import SyncPrimitives

/// The consistency oracle of SPEC.md "Definitions", independent of what the store does.
///
/// Every value carries the id of the write that made it. The oracle knows each write's key, when it was
/// acknowledged, and which writes it superseded (the writes returned by the read that gave it its context, or the
/// thread's own previous write of the key). It classifies every ok read as fresh or stale with its k, and at the
/// end counts the acknowledged writes that are neither returned nor superseded by anything a read of all replicas
/// returns. Under `vv` it forgets the writes no verdict can need any more (``Writes/forget(keys:now:retention:)``),
/// so a long run's memory stays flat.
///
/// Sharded by key: a thread locks only the shard of the key it touches, so the generator is never serialized
/// behind one lock.
public final class Oracle: @unchecked Sendable {
    /// What the oracle knows of one write, kept until the write is forgotten (``Writes/forget(keys:now:retention:)``)
    /// or the run ends.
    ///
    /// 32 bytes. Orders and `saw` positions are per shard, in 32 bits (2^31 edges a shard: tens of billions of
    /// writes over 64 shards); past that the conversions trap. When a delete was sent is the one time the oracle
    /// asks of a write after registering it: it is kept in the shard's `saw` just before the delete's edges
    /// (``Oracle/sentAt(_:_:)``), not in every record.
    struct WriteInfo {
        var id: UInt64
        var key: UInt64
        private var seq32: UInt32
        private var ackOrder32: UInt32 = 0
        var sawStart: Int32
        /// The count of writes it saw (30 bits), in the top bit whether it is a delete, in the next whether its
        /// request ended without an acknowledgement.
        private var sawCountAndFlags: UInt32

        init(id: UInt64, key: UInt64, seq: UInt64, sawStart: Int32, sawCount: Int32, isDelete: Bool) {
            self.id = id
            self.key = key
            seq32 = UInt32(seq)
            self.sawStart = sawStart
            precondition(sawCount < 1 << 30, "a write that saw over 2^30 writes")
            sawCountAndFlags = UInt32(sawCount) | (isDelete ? 1 << 31 : 0)
        }

        /// Registration order within the shard (from 1): a write can only supersede writes registered before it.
        var seq: UInt64 { UInt64(seq32) }
        /// Acknowledgement order within the shard (from 1; 0: not acknowledged yet). See ``Reach``.
        var ackOrder: UInt64 {
            get { UInt64(ackOrder32) }
            set { ackOrder32 = UInt32(newValue) }
        }
        var sawCount: Int32 { Int32(sawCountAndFlags & 0x3FFF_FFFF) }
        /// A delete: its tombstone may be purged once every replica holds it alone (``deletes(of:liveAt:)``).
        var isDelete: Bool { sawCountAndFlags >> 31 != 0 }
        /// Its request ended without an acknowledgement (timed out, unavailable, refused): it never will be.
        var gaveUp: Bool {
            get { sawCountAndFlags & 1 << 30 != 0 }
            set { sawCountAndFlags = newValue ? sawCountAndFlags | 1 << 30 : sawCountAndFlags & ~(1 << 30) }
        }
        /// Its outcome is known: acknowledged or given up.
        var finished: Bool { ackOrder != 0 || gaveUp }
        /// Where the ids it saw are in its shard's `saw`.
        var edges: Range<Int> { Int(sawStart)..<Int(sawStart) + Int(sawCount) }

        /// The same write, its edges moved to `start` and cut to `count`.
        func moved(to start: Int, count: Int) -> WriteInfo {
            var w = self
            w.sawStart = Int32(start)
            w.sawCountAndFlags = sawCountAndFlags & 0xC000_0000 | UInt32(count)
            return w
        }
    }

    struct Acked {
        var id: UInt64
        var ackedAt: UInt64
        var seq: UInt64
        /// Its acknowledgement order: it entered the frontier then.
        var entered: UInt64
        /// When a write that supersedes it was acknowledged (0: not yet), and that write's acknowledgement order.
        var supersededAt: UInt64 = 0
        var removed: UInt64 = 0
        /// The latest `ackedAt` (in the frontier) or `supersededAt` (in the superseded list) of this entry and
        /// every entry before it in its list: threads time their acknowledgements before they reach the oracle,
        /// so neither list is quite in the order of its times.
        var latest: UInt64 = 0
        var isDelete = false
    }

    /// Where a search for the writes reachable from some writes need look: below which writes a target (an
    /// acknowledged write it wants to know about) can be. A write only supersedes writes registered before it, and
    /// when write S was acknowledged every frontier write S reaches left the frontier; so a target that was in the
    /// frontier then (entered before S, and left after S or not at all) and stayed is not reachable from S. The
    /// search goes below S only if some other target registered before S entered the frontier after S (or left it
    /// at or before S): writes in flight together with S. Without this, a key with an old unsuperseded write (every
    /// write lost under lww stays one) made every search walk the key's whole history since it, and a run slowed
    /// down as it went.
    struct Reach {
        /// Targets in the frontier (in the order they entered it).
        var frontier: [Acked]
        /// Other targets (superseded ones), summarized: the oldest registered, the latest to enter the frontier,
        /// the earliest to leave it.
        var floor: UInt64 = .max
        var maxEntered: UInt64 = 0
        var minRemoved: UInt64 = .max

        init(frontier: [Acked]) { self.frontier = frontier }

        mutating func target(_ a: Acked) {
            floor = min(floor, a.seq)
            maxEntered = max(maxEntered, a.entered)
            minRemoved = min(minRemoved, a.removed)
        }

        /// Whether a target other than `w` itself can be reachable from `w`.
        func below(_ w: WriteInfo) -> Bool {
            if w.ackOrder == 0 { return true }  // not acknowledged yet: it says nothing
            var i = frontier.count - 1
            while i >= 0 && frontier[i].entered > w.ackOrder {
                if frontier[i].seq < w.seq { return true }
                i -= 1
            }
            return floor < w.seq && (maxEntered > w.ackOrder || minRemoved <= w.ackOrder)
        }
    }

    /// Per key: acknowledged writes no acknowledged write supersedes yet (the frontier), and those superseded
    /// recently (in the order their superseders were acknowledged), kept for reads that began before the superseding
    /// acknowledgement.
    struct KeyWrites {
        /// In the order the writes were acknowledged, among entries already superseded (`removed != 0`), which are
        /// dropped in bulk now and then: removing each as it went moved the whole list, and under lww, where every
        /// write lost stays in the frontier for good, the list grows all run long.
        var frontier: [Acked] = []
        /// Frontier entries not superseded.
        var live = 0
        var superseded: [Acked] = []
        /// The first `expired` of `superseded` are forgotten; they are dropped in bulk once they are half the list
        /// (dropping them as they expired moved the whole list on almost every write of a hot key, whose list holds
        /// every write of the last `retention`; waiting for 64 of them kept up to that many on every key touched).
        var expired = 0

        /// The frontier position of the write acknowledged `entered`-th, if it is still there.
        func position(of entered: UInt64) -> Int? {
            var lo = 0
            var hi = frontier.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if frontier[mid].entered < entered { lo = mid + 1 } else { hi = mid }
            }
            return lo < frontier.count && frontier[lo].entered == entered ? lo : nil
        }

        mutating func enter(_ a: Acked) {
            var a = a
            a.latest = max(a.ackedAt, frontier.last?.latest ?? 0)
            frontier.append(a)
            live += 1
        }

        /// The frontier write at `i` is superseded by the write acknowledged `order`-th, at `time`.
        mutating func supersede(at i: Int, by order: UInt64, at time: UInt64) {
            frontier[i].supersededAt = time
            frontier[i].removed = order
            live -= 1
            var a = frontier[i]
            a.latest = max(time, superseded.last?.latest ?? 0)
            superseded.append(a)
        }

        /// Deletes sent and not acknowledged (yet, or ever: a delete its client gave up on may still be applied,
        /// and purged), in the order they were sent.
        var unacknowledgedDeletes: [UInt64] = []

        /// Lists a delete sent at `time` among the unacknowledged ones, in sending order (`sentAt` gives the
        /// others'): at the end, or a few places before it.
        mutating func unacknowledged(delete id: UInt64, sentAt time: UInt64, by sentAt: (UInt64) -> UInt64?) {
            var i = unacknowledgedDeletes.count
            while i > 0, let t = sentAt(unacknowledgedDeletes[i - 1]), t > time { i -= 1 }
            unacknowledgedDeletes.insert(id, at: i)
        }

        /// The deletes not superseded, and those not acknowledged (the superseded list, which holds every write
        /// of the last `retention`, is not read: a hot key's was most of a run's time when each write read it).
        func liveDeletes() -> [UInt64] {
            var ids = unacknowledgedDeletes
            for a in frontier where a.isDelete && a.removed == 0 { ids.append(a.id) }
            return ids
        }

        /// The live deletes sent by `cutoff` (`sentAt` gives when each was). The unacknowledged ones are a prefix of
        /// their list, which is in sending order: a key holding thousands (refused at the sibling limit, or sent
        /// within the grace) has only those looked up.
        func liveDeletes(sentBy cutoff: UInt64, sentAt: (UInt64) -> UInt64?) -> [UInt64] {
            var ids: [UInt64] = []
            for d in unacknowledgedDeletes {
                guard let t = sentAt(d) else { continue }
                if t > cutoff { break }
                ids.append(d)
            }
            for a in frontier where a.isDelete && a.removed == 0 {
                if let t = sentAt(a.id), t <= cutoff { ids.append(a.id) }
            }
            return ids
        }

        /// The deletes not superseded at `time`, and those not acknowledged: what a read that began then and found
        /// the key empty (its tombstones purged) returned.
        func deletes(liveAt time: UInt64) -> [UInt64] {
            var ids = liveDeletes()
            for a in superseded[expired...].reversed() {
                if a.latest < time { break }  // (ordered by `latest`, as in ``Oracle/missed(_:saw:start:returned:)``)
                if a.isDelete && a.supersededAt >= time { ids.append(a.id) }
            }
            return ids
        }

        /// Drops superseded entries from the frontier once they are as many as the live ones (so it never holds
        /// more than twice those, and the common frontier of one or two writes stays that small), and the
        /// superseded writes no read in flight can have begun before `time - retention`.
        mutating func compact(at time: UInt64, retention: UInt64) {
            let dead = frontier.count - live
            if live == 0 {
                frontier.removeAll(keepingCapacity: true)
            } else if dead > 0 && dead >= live {
                frontier.removeAll { $0.removed != 0 }
                var latest: UInt64 = 0
                for i in frontier.indices {
                    latest = max(latest, frontier[i].ackedAt)
                    frontier[i].latest = latest
                }
            }
            // (Stops at the first entry not expired: one superseded a little later than a later entry just waits.)
            while expired < superseded.count && superseded[expired].supersededAt &+ retention < time { expired += 1 }
            if expired > 0 && expired * 2 >= superseded.count {
                superseded.removeFirst(expired)
                expired = 0
            }
        }
    }

    /// Records in chunks of 4,096 that never move: an array doubling as it grew copied every record now and then,
    /// and its spare room and the copy's moment of two arrays were a third of a long run's memory.
    struct Records {
        private var chunks: [[WriteInfo]] = []
        private(set) var count = 0
        static let shift = 12

        subscript(position: Int) -> WriteInfo {
            @inline(__always) get { chunks[position >> Records.shift][position & (1 << Records.shift - 1)] }
            set { chunks[position >> Records.shift][position & (1 << Records.shift - 1)] = newValue }
        }

        mutating func append(_ w: WriteInfo) {
            if count & (1 << Records.shift - 1) == 0 {
                chunks.append([])
                chunks[chunks.count - 1].reserveCapacity(1 << Records.shift)
            }
            chunks[chunks.count - 1].append(w)
            count += 1
        }

        var bytes: Int { chunks.count << Records.shift * MemoryLayout<WriteInfo>.stride }
    }

    /// A shard's records of writes in registration order, the ids each saw (`saw`), and an index from id to
    /// record: open addressing with linear probing, at most half full, each slot a record's position + 1 (0: empty).
    /// Small once the shard forgets (a hash probe where a table of chunks by id was two loads, but a table that
    /// can shrink).
    struct Writes {
        private(set) var records = Records()
        var saw: [UInt64] = []
        private var slots: [UInt32] = []

        /// The position of write `id`'s record, if it is known (registered and not forgotten).
        @inline(__always)
        func find(_ id: UInt64) -> Int? {
            slots.withUnsafeBufferPointer { slots in
                guard !slots.isEmpty else { return nil }
                let mask = slots.count - 1
                var i = Int(truncatingIfNeeded: Hash64.mix(id)) & mask
                while true {
                    let s = Int(slots[i])
                    if s == 0 { return nil }
                    if records[s - 1].id == id { return s - 1 }
                    i = (i + 1) & mask
                }
            }
        }

        @inline(__always)
        func record(_ id: UInt64) -> WriteInfo? { find(id).map { records[$0] } }

        /// The ids write `w` saw.
        @inline(__always)
        func edges(of w: WriteInfo) -> ArraySlice<UInt64> { saw[w.edges] }

        subscript(position: Int) -> WriteInfo {
            get { records[position] }
            set { records[position] = newValue }
        }

        /// Adds `w`'s record. Ids are registered once (the load generator's count up; the PBS probe's are its own);
        /// looking each up first was a probe that missed on every write.
        mutating func add(_ w: WriteInfo) {
            records.append(w)
            if records.count * 2 > slots.count {
                index(size: max(16, slots.count * 2))
            } else {
                place(records.count - 1)
            }
        }

        private mutating func place(_ position: Int) {
            let mask = slots.count - 1
            var i = Int(truncatingIfNeeded: Hash64.mix(records[position].id)) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = UInt32(position + 1)
        }

        private mutating func index(size: Int) {
            slots = Array(repeating: 0, count: size)
            for i in 0..<records.count { place(i) }
        }

        var bytes: Int {
            records.bytes + saw.capacity * MemoryLayout<UInt64>.stride
                + slots.capacity * MemoryLayout<UInt32>.stride
        }

        /// Forgets every write whose history no check can need again, and returns how many it forgot.
        ///
        /// A write is *settled* once its outcome is known and nothing can owe it: given up, or acknowledged, no
        /// longer in its key's frontier and superseded more than `retention` before `now` (the oracle's horizon
        /// for reads in flight: ``KeyWrites/compact(at:retention:)``). A read can owe only a write acknowledged and
        /// not superseded when it began, so never a settled one; an acknowledgement supersedes only writes in the
        /// frontier. A write is forgotten when it and every write it reaches are settled — so the forgotten writes
        /// are closed under "saw", and no write kept is reachable through a forgotten one: every search from a
        /// write kept finds what it found before, and a search that starts at a forgotten write (a stale replica's
        /// version, a client's old context) could only have found settled writes. Stale-read counts are unchanged;
        /// lost-write counts too, but for the writes of a key whose newest ones were lost as well: those count the
        /// kept writes only (a run that loses a write still counts at least one).
        ///
        /// A pass in registration order (a write saw only writes registered before it), again while deletes kept
        /// pin more (below); then the records kept are packed and indexed anew, their edges to forgotten writes
        /// dropped. The caller holds the shard's lock.
        mutating func forget(keys: inout [FastKey: KeyWrites], now: UInt64, retention: UInt64) -> Int {
            let count = records.count
            var pinned = [Bool](repeating: false, count: count)
            for (_, k) in keys {
                for a in k.frontier where a.removed == 0 {
                    if let i = find(a.id) { pinned[i] = true }
                }
                for a in k.superseded[k.expired...] where a.supersededAt &+ retention >= now {
                    if let i = find(a.id) { pinned[i] = true }
                }
            }
            var gone = [Bool](repeating: false, count: count)
            var forgotten = 0
            var reached = [Bool](repeating: false, count: count)  // (from a kept delete: searched once)
            while true {
                gone = [Bool](repeating: false, count: count)
                forgotten = 0
                for i in 0..<count where !pinned[i] && records[i].finished {
                    var settled = true
                    for id in saw[records[i].edges] {
                        if let j = find(id), !gone[j] {
                            settled = false
                            break
                        }
                    }
                    if settled {
                        gone[i] = true
                        forgotten += 1
                    }
                }
                // A delete kept keeps every write it reaches: whether a purged delete took effect is decided at the
                // end by whether it reaches a write some replica still holds (``Oracle/supersedes(_:anyOf:_:)``),
                // and a replica can hold a write long settled. Pinning those can keep more writes, some of them
                // deletes: again, until nothing more is pinned (seldom more than twice).
                var stack: [Int] = []
                for i in 0..<count where !gone[i] && records[i].isDelete { stack.append(i) }
                var more = false
                while let i = stack.popLast() {
                    for id in saw[records[i].edges] {
                        guard let j = find(id), !reached[j] else { continue }
                        reached[j] = true
                        if !pinned[j] {
                            pinned[j] = true
                            more = more || gone[j]
                        }
                        stack.append(j)
                    }
                }
                if !more { break }
            }
            guard forgotten > 0 else { return 0 }
            // Deletes forgotten are off the lists of those not acknowledged (all of them given up: settled).
            for i in keys.values.indices where !keys.values[i].unacknowledgedDeletes.isEmpty {
                keys.values[i].unacknowledgedDeletes.removeAll { id in find(id).map { gone[$0] } ?? false }
            }
            var kept = Records()
            var keptSaw: [UInt64] = []
            for i in 0..<count where !gone[i] {
                let w = records[i]
                let start = keptSaw.count
                if w.isDelete { keptSaw.append(saw[Int(w.sawStart) - 1]) }  // (its sending time)
                for id in saw[w.edges] {
                    if let j = find(id), gone[j] { continue }
                    keptSaw.append(id)
                }
                let first = start + (w.isDelete ? 1 : 0)
                kept.append(w.moved(to: first, count: keptSaw.count - first))
            }
            records = kept
            saw = keptSaw
            var size = 16
            while size < records.count * 4 { size <<= 1 }
            index(size: size)
            return forgotten
        }
    }

    struct Shard {
        var writes = Writes()
        var nextSeq: UInt64 = 1
        var nextAck: UInt64 = 1
        var keys: [FastKey: KeyWrites] = [:]
        /// Deletes sent, with a `deleteGrace` (while there are none, nothing looks for purged tombstones).
        var deletes = 0
        /// The latest acknowledgement time seen: the clock of ``Writes/forget(keys:now:retention:)``.
        var latest: UInt64 = 0
        /// Records kept by the last ``Writes/forget(keys:now:retention:)``: the next comes at twice as many.
        var kept = 0
    }

    /// Locked once per write, acknowledgement and read check (``Unretained``).
    let shardRefs: Unretained<Locked<Shard>>
    let mask: Int
    let retention: UInt64
    let deleteGrace: UInt64?
    /// Used from one thread only (the simulator's): the shards are not locked.
    let singleThreaded: Bool
    /// The fewest records a shard holds before it forgets (``Writes/forget(keys:now:retention:)``); nil: never.
    let forgetFrom: Int?

    /// - Parameters:
    ///   - retention: how long a superseded write stays checkable: longer than any read can take (the request
    ///     timeout plus delays).
    ///   - deleteGrace: how long after a delete was sent its tombstone may be gone (``CoreConfig/tombstoneGrace``):
    ///     a write sent later supersedes it (``wrote(id:key:saw:delete:at:)``), and a read that finds the key
    ///     empty returns it (``deletes(of:liveAt:)``). nil: deletes are writes like any other (`lww`, where every
    ///     write that loses stays unsuperseded for good: a delete among them would draw every later write's
    ///     search through the key's whole history, and a 3 s run took minutes).
    ///   - singleThreaded: every call comes from one thread (the simulator): the shards' locks are not taken (a
    ///     pair of uncontended `pthread_mutex` calls on every write, acknowledgement and read check).
    ///   - forgetFrom: forget settled history (``Writes/forget(keys:now:retention:)``) in shards that hold at least
    ///     this many records, twice as many as they kept last time and one for each of their keys, so that a long
    ///     run's memory stays flat.
    ///     nil: keep every write to the end — where every lost write must be counted (lww drops writes, a wipe
    ///     loses them: how many is the figure).
    public init(shards: Int = 64, retention: UInt64 = 2_000_000_000, deleteGrace: UInt64? = nil,
                singleThreaded: Bool = false, forgetFrom: Int? = nil) {
        var c = 1
        while c < shards { c <<= 1 }
        shardRefs = Unretained((0..<c).map { _ in Locked(Shard()) })
        mask = c - 1
        self.retention = retention
        self.deleteGrace = deleteGrace
        self.singleThreaded = singleThreaded
        self.forgetFrom = forgetFrom
    }

    /// What the oracle holds, in bytes: its records of writes (the part that grows with a run's length unless it
    /// forgets), the edges of what each write saw, their index, and the per-key table (not the few recent writes a
    /// key's lists keep). Reads each shard under its lock: call it now and then (a real-time run, once a second),
    /// not per operation.
    public func heldBytes() -> Int {
        var bytes = 0
        for i in 0..<shardRefs.count {
            bytes += shardRefs.with(i) { shard in
                let sum: (inout Shard) -> Int = { s in
                    s.writes.bytes + s.keys.capacity * (MemoryLayout<FastKey>.stride + MemoryLayout<KeyWrites>.stride)
                }
                return singleThreaded ? shard.withoutLocking(sum) : shard.withLock(sum)
            }
        }
        return bytes
    }

    /// How many writes the oracle has records of (registered and not forgotten).
    public var recordsHeld: Int {
        (0..<shardRefs.count).reduce(0) { n, i in n + shardRefs.objects[i].withLock { $0.writes.records.count } }
    }

    /// Whether the oracle has a record of write `id` of `key` (registered and not forgotten).
    public func holds(_ id: UInt64, key: UInt64) -> Bool { withShard(key) { $0.writes.find(id) != nil } }

    /// Runs `body` under the lock of `key`'s shard (none when ``singleThreaded``).
    @inline(__always)
    func withShard<R>(_ key: UInt64, _ body: (inout Shard) -> R) -> R {
        shardRefs.with(shardIndex(key)) { singleThreaded ? $0.withoutLocking(body) : $0.withLock(body) }
    }

    @inline(__always)
    func shardIndex(_ key: UInt64) -> Int { Int(truncatingIfNeeded: Hash64.mix(key)) & mask }

    /// When delete `id` was sent, if it was registered as one (the caller holds the lock of its key's shard, whose
    /// records these are): the entry before its edges.
    func sentAt(_ id: UInt64, _ writes: Writes) -> UInt64? {
        guard let w = writes.record(id), w.isDelete else { return nil }
        return writes.saw[Int(w.sawStart) - 1]
    }

    /// The writes reachable from `ids` (themselves included) — all of them, or, given `reach`, those a target can
    /// be among. Every write reachable is a write of the same key, so the caller's shard holds them all.
    func closure(_ writes: Writes, of ids: [UInt64], _ reach: Reach? = nil) -> WriteSet {
        var covered = WriteSet()
        var stack = ids
        while let id = stack.popLast() {
            guard covered.insert(id), let w = writes.record(id), reach?.below(w) ?? true else { continue }
            stack.append(contentsOf: writes.edges(of: w))
        }
        return covered
    }

    /// A write (`delete`: a delete) is about to be sent at `time`; `saw` are the writes its context stands for
    /// (it supersedes them).
    ///
    /// With a `deleteGrace`, it also supersedes the key's deletes not superseded (or not acknowledged) that were
    /// sent at least that long before: their tombstones may have been purged, and a write that finds the key gone
    /// starts it afresh, with no sibling for the delete to survive in (Riak's `delete_mode`). Otherwise a client
    /// that had not seen a delete, writing the key after its tombstone was purged, made the delete count as lost.
    public func wrote(id: UInt64, key: UInt64, saw: [UInt64], delete: Bool = false, at time: UInt64 = 0) {
        register(id: id, key: key, count: saw.count, delete: delete, at: time) { $0.append(contentsOf: saw) }
    }

    /// A write is about to be sent whose context stands for one write, `saw` (the thread's own last one).
    public func wrote(id: UInt64, key: UInt64, sawOne saw: UInt64, delete: Bool = false, at time: UInt64 = 0) {
        register(id: id, key: key, count: 1, delete: delete, at: time) { $0.append(saw) }
    }

    @inline(__always)
    func register(id: UInt64, key: UInt64, count: Int, delete: Bool, at time: UInt64,
                  _ append: (inout [UInt64]) -> Void) {
        withShard(key) { s in
            if delete { s.writes.saw.append(time) }  // (``sentAt(_:_:)``)
            let start = Int32(s.writes.saw.count)
            append(&s.writes.saw)
            var count = count
            if let grace = deleteGrace, s.deletes > 0, time >= grace, let i = s.keys.index(forKey: FastKey(key)) {
                // Each live delete is listed once, so only the ids the write named can repeat one.
                let named = Int(start)..<Int(start) + count
                let old = s.keys.values[i].liveDeletes(sentBy: time - grace, sentAt: { sentAt($0, s.writes) })
                for d in old where !s.writes.saw[named].contains(d) {
                    s.writes.saw.append(d)
                    count += 1
                }
            }
            if delete && deleteGrace != nil {
                s.deletes += 1
                // In the order sent: threads register what they sent a moment ago, so a later one may come first.
                let writes = s.writes  // (gone with this block, before the records change)
                s.keys[FastKey(key), default: KeyWrites()].unacknowledged(delete: id, sentAt: time,
                                                                         by: { sentAt($0, writes) })
            }
            s.writes.add(WriteInfo(id: id, key: key, seq: s.nextSeq, sawStart: start, sawCount: Int32(count),
                                   isDelete: delete))
            s.nextSeq += 1
            // (Each time it forgets, a shard reads every key's lists: not before it holds a record for each.)
            if let forgetFrom, s.writes.records.count >= max(forgetFrom, 2 * s.kept, s.keys.count) {
                _ = s.writes.forget(keys: &s.keys, now: s.latest, retention: retention)
                s.kept = s.writes.records.count
            }
        }
    }

    /// A write refused before anything held it (its reply carried no dot: see ``ClientReply/dot``): it never
    /// takes effect. A delete leaves the key's unacknowledged deletes, which reads that find the key empty would
    /// otherwise return and every write sent a grace later would supersede (each a superseded edge, on every
    /// write: at the sibling limit, where most deletes are refused, thousands a write).
    public func refused(id: UInt64, key: UInt64) {
        gaveUp(id: id, key: key)
        withShard(key) { s in
            guard s.deletes > 0, let i = s.keys.index(forKey: FastKey(key)),
                let j = s.keys.values[i].unacknowledgedDeletes.lastIndex(of: id)
            else { return }
            s.keys.values[i].unacknowledgedDeletes.remove(at: j)
        }
    }

    /// A write's request ended without an acknowledgement (it timed out, or the cluster was unavailable or refused
    /// it): it never will be acknowledged, and once what it saw is settled it can be forgotten.
    public func gaveUp(id: UInt64, key: UInt64) {
        withShard(key) { s in
            if let i = s.writes.find(id), s.writes[i].ackOrder == 0 { s.writes[i].gaveUp = true }
        }
    }

    /// A write was acknowledged to its client at `time`.
    public func acknowledged(id: UInt64, key: UInt64, at time: UInt64) {
        withShard(key) { s in
            guard let p = s.writes.find(id), s.writes[p].ackOrder == 0 else { return }
            s.latest = max(s.latest, time)
            let w = s.writes[p]
            if s.deletes > 0, let i = s.keys.index(forKey: FastKey(key)),
                !s.keys.values[i].unacknowledgedDeletes.isEmpty {
                // Acknowledged, or superseded by a write acknowledged (which now covers what it saw): off the list,
                // which a delete its client gave up on and nothing superseded stays on.
                let saw = s.writes.edges(of: w)
                s.keys.values[i].unacknowledgedDeletes.removeAll { $0 == id || saw.contains($0) }
            }
            let order = s.nextAck
            s.nextAck += 1
            // Updated in place: a copy of the key's lists would be copied again on the first write.
            supersede(&s.keys[FastKey(key), default: KeyWrites()], by: id, w, order, at: time, writes: s.writes)
            s.writes[p].ackOrder = order  // after the search: it starts from this write
        }
    }

    func supersede(_ k: inout KeyWrites, by id: UInt64, _ w: WriteInfo, _ order: UInt64, at time: UInt64,
                   writes: Writes) {
        // Most acknowledgements need no search (and no Set). A search from the writes this one saw reaches only
        // writes registered no later than the newest of them (a write supersedes writes registered before it), so
        // a live frontier write it did not see and registered after that one is out of its reach. When every live
        // frontier write it did not see is (an update after a read of the key, a thread's next write of it, or a
        // write concurrent with another one), the writes it saw are all it supersedes.
        let direct = writes.edges(of: w)
        if !direct.isEmpty {  // (a blind write supersedes nothing)
            var newest: UInt64?  // looked up only if some live write was not seen
            func outOfReach(_ a: Acked) -> Bool {
                if newest == nil { newest = direct.reduce(0) { max($0, writes.record($1)?.seq ?? 0) } }
                return a.seq > newest!
            }
            if k.frontier.allSatisfy({ $0.removed != 0 || direct.contains($0.id) || outOfReach($0) }) {
                for i in k.frontier.indices where k.frontier[i].removed == 0 && direct.contains(k.frontier[i].id) {
                    k.supersede(at: i, by: order, at: time)
                }
            } else {
                // One search from the new write; what it finds is looked up in the frontier (a search per frontier
                // write, or a membership test for each, made a key with many unsuperseded writes quadratic).
                for x in closure(writes, of: [id], Reach(frontier: k.frontier)) where x != id {
                    if let i = livePosition(of: x, in: k, writes) { k.supersede(at: i, by: order, at: time) }
                }
            }
        }
        k.compact(at: time, retention: retention)
        k.enter(Acked(id: id, ackedAt: time, seq: w.seq, entered: order, isDelete: w.isDelete))
    }

    /// Classifies an ok read that started at `start` and returned `returned`: how many acknowledged writes it
    /// missed (0: fresh). A write counts if it was acknowledged before the read began and nothing acknowledged
    /// before the read began supersedes it.
    /// `returned`: the write ids the read returned (a `CollectionOfOne` for a read of one version, the common case,
    /// which then allocates nothing; ``deletes(of:liveAt:)`` for a read that found the key empty).
    public func missed<R: Collection<UInt64>>(key: UInt64, start: UInt64, returned: R) -> Int {
        withShard(key) { s in
            // The key's lists in place: a copy of them cost a retain and a release of each on every read.
            guard let i = s.keys.index(forKey: FastKey(key)) else { return 0 }
            return missed(&s.keys.values[i], s.writes, start: start, returned: returned)
        }
    }

    /// What a read of `key` that began at `time` and found it empty returned: the key's deletes not superseded
    /// then, and those not acknowledged (a delete its client gave up on may have been applied). A tombstone that
    /// every replica holds alone is purged after a grace period (Riak's `delete_mode`), and "not found" is then how
    /// the store says "deleted"; a write that follows such a read supersedes those deletes. Any other write the
    /// read owed is still missed. Without a `deleteGrace`: nothing.
    public func deletes(of key: UInt64, liveAt time: UInt64) -> [UInt64] {
        withShard(key) { s in
            guard deleteGrace != nil, let i = s.keys.index(forKey: FastKey(key)) else { return [] }
            return s.keys.values[i].deletes(liveAt: time)
        }
    }

    func missed<R: Collection<UInt64>>(_ k: inout KeyWrites, _ writes: Writes, start: UInt64, returned: R) -> Int {
        // The writes the read owed and did not return: acknowledged before it began, and not superseded before it
        // began (those superseded after it began are still owed; newest first, stop at the old ones). In the
        // common case there is none, and nothing is allocated.
        func unreturned(_ a: Acked) -> Bool { a.ackedAt < start && !returned.contains(a.id) }
        var owed: [Acked] = []
        // The frontier from its newest end, down to where every write before was acknowledged before the read
        // began (and at least the newest 16 entries): the rest, `older` (before position `i`), are counted, not
        // listed.
        var i = k.frontier.count
        var older = k.live
        while i > 0 && (k.frontier[i - 1].latest >= start || k.frontier.count - i < 16) {
            i -= 1
            guard k.frontier[i].removed == 0 else { continue }
            older -= 1
            if unreturned(k.frontier[i]) { owed.append(k.frontier[i]) }
        }
        for a in k.superseded[k.expired...].reversed() {
            if a.latest < start { break }
            if a.supersededAt >= start && unreturned(a) { owed.append(a) }
        }
        if owed.isEmpty && older == 0 { return 0 }
        // One search from what the read returned, only where a write owed can be (the whole frontier stands in for
        // the frontier writes owed).
        var reach = Reach(frontier: k.frontier)
        for a in owed where a.removed != 0 { reach.target(a) }
        let covered = closure(writes, of: Array(returned), reach)
        var missed = owed.reduce(0) { $0 + (covered.contains($1.id) ? 0 : 1) }
        if older > 0 {
            // Owed, but for those the read returned or covered: found by looking what it covered up.
            missed += older
            for x in covered {
                if let j = livePosition(of: x, in: k, writes), j < i { missed -= 1 }
            }
        }
        return missed
    }

    /// The frontier position of write `x` in `k`, if it is there and not superseded.
    func livePosition(of x: UInt64, in k: KeyWrites, _ writes: Writes) -> Int? {
        guard let r = writes.record(x), r.ackOrder != 0, let i = k.position(of: r.ackOrder),
            k.frontier[i].removed == 0
        else { return nil }
        return i
    }

    /// A lost write and why.
    public struct Loss: Sendable {
        public var write: UInt64
        public var key: UInt64
    }

    /// Every key's lost writes, given a reader of all replicas: the acknowledged writes that are neither in what
    /// a read of all replicas of their key returns (`readAll`, called once for each key with an acknowledged
    /// write) nor superseded by anything in it. A key no replica holds returns its deletes nothing superseded, and
    /// those never acknowledged (its tombstones were purged; with a `deleteGrace`). `purged` gives a key's deletes
    /// whose tombstones some replica purged: applied, whatever the key holds now. Call when the run is quiescent.
    ///
    /// One search per key from what `readAll` returns, with a mark per write (by its registration order in the
    /// shard) for what the searches reached: a set of ids per key cost a hash and often a probe per write reached,
    /// and grouping the acknowledged writes by key cost as much again. A write supersedes only writes of its own
    /// key, so the searches never meet and one mark array serves a shard. Then one pass over the writes picks the
    /// acknowledged ones not reached (grouping them by shard first took 24 bytes a write, at the end of a run whose
    /// writes the oracle already holds).
    public func lostWrites(readAll: (UInt64) -> [UInt64], purged: (UInt64) -> [UInt64] = { _ in [] }) -> [Loss] {
        var losses: [Loss] = []
        for i in shardRefs.objects.indices {
            shardRefs.objects[i].withLock { s in
                guard s.nextAck > 1 else { return }  // (nothing acknowledged here: nothing to find)
                var marks = [Bool](repeating: false, count: s.writes.records.count)
                var stack: [UInt64] = []
                for (key, k) in s.keys {  // (the keys acknowledged writes and deletes made entries for)
                    let held = readAll(key.raw)
                    // Nothing held: the key's tombstones were purged, and its deletes are what it returns.
                    stack.append(contentsOf: held.isEmpty && deleteGrace != nil ? k.liveDeletes() : held)
                    // A delete whose tombstone was purged took effect, and so did what it superseded, even when a
                    // write that had not seen it reached the key afterwards and started it afresh (Riak's
                    // delete_mode): that write, sent within the grace, can arrive after the purge when faults or
                    // queues hold it back. Unless the key holds a write the delete superseded: then it came back.
                    for d in purged(key.raw) where !supersedes(d, anyOf: held, s.writes) { stack.append(d) }
                    while let id = stack.popLast() {
                        guard let p = s.writes.find(id), s.writes[p].key == key.raw, !marks[p] else { continue }
                        marks[p] = true
                        stack.append(contentsOf: s.writes.edges(of: s.writes[p]))
                    }
                }
                for p in 0..<s.writes.records.count where !marks[p] {
                    let w = s.writes[p]
                    if w.ackOrder != 0 { losses.append(Loss(write: w.id, key: w.key)) }
                }
            }
        }
        return losses.sorted { $0.write < $1.write }
    }

    /// Whether `id` supersedes one of `writes` (a write its context's history holds). Only writes registered after
    /// the oldest of `writes` are searched: a write supersedes only writes registered before it.
    func supersedes(_ id: UInt64, anyOf ids: [UInt64], _ writes: Writes) -> Bool {
        guard let w = writes.record(id) else { return false }
        let floor = ids.compactMap { writes.record($0)?.seq }.min() ?? .max
        var seen = Set<UInt64>()
        var stack = Array(writes.edges(of: w))
        while let next = stack.popLast() {
            if ids.contains(next) { return true }
            guard seen.insert(next).inserted, let v = writes.record(next), v.seq > floor else { continue }
            stack.append(contentsOf: writes.edges(of: v))
        }
        return false
    }

    /// How many of `losses` no write in `held` explains: a loss is explained when the lost write itself, or a
    /// write that supersedes it, is in `held` (the writes some wiped node held when it was wiped). A write lost
    /// because its superseder was wiped is lost too: what superseded it on the surviving replicas is gone.
    /// Call when the run is quiescent.
    public func unexplained(_ losses: [Loss], by held: Set<UInt64>) -> [Loss] {
        var byShard: [Int: [Loss]] = [:]
        for l in losses { byShard[shardIndex(l.key), default: []].append(l) }
        var out: [Loss] = []
        for (index, list) in byShard {
            shardRefs.objects[index].withLock { s in
                // The held writes of the keys lost here, by key.
                var roots: [UInt64: [UInt64]] = [:]
                for id in held {
                    if let w = s.writes.record(id) { roots[w.key, default: []].append(id) }
                }
                var covered: [UInt64: WriteSet] = [:]
                for l in list {
                    if covered[l.key] == nil {
                        covered[l.key] = closure(s.writes, of: roots[l.key] ?? [])
                    }
                    if !covered[l.key]!.contains(l.write) { out.append(l) }
                }
            }
        }
        return out
    }
}

/// A set of write ids: a plain array while small (a search mostly reaches a handful of writes; a `Set` hashed each
/// with SipHash and allocated its table), hashed beyond.
struct WriteSet: Sequence {
    /// Every member, in insertion order.
    private(set) var members: [UInt64] = []
    private var hashed: Set<FastKey>?
    static let smallLimit = 32

    /// Adds `id`; returns whether it was new.
    mutating func insert(_ id: UInt64) -> Bool {
        if hashed != nil {
            guard hashed!.insert(FastKey(id)).inserted else { return false }
        } else {
            if members.contains(id) { return false }
            if members.count == WriteSet.smallLimit {
                hashed = Set(members.lazy.map(FastKey.init))
                hashed!.insert(FastKey(id))
            }
        }
        members.append(id)
        return true
    }

    func contains(_ id: UInt64) -> Bool { hashed?.contains(FastKey(id)) ?? members.contains(id) }

    func makeIterator() -> IndexingIterator<[UInt64]> { members.makeIterator() }
}
