import CQuorumSupport
import ReplicationCore
import Synchronization
import SyncPrimitives
#if canImport(Glibc)
import Glibc
#endif

/// The consistency oracle of SPEC.md "Definitions", independent of what the store does.
///
/// Every value carries the id of the write that made it. The oracle knows each write's key, when it was
/// acknowledged, and which writes it superseded (the writes returned by the read that gave it its context, or the
/// thread's own previous write of the key). It classifies every ok read as fresh or stale with its k, and at the
/// end counts the acknowledged writes that are neither returned nor superseded by anything a read of all replicas
/// returns.
///
/// Sharded by key: a thread locks only the shard of the key it touches, so the generator is never serialized
/// behind one lock.
public final class Oracle: @unchecked Sendable {
    /// What the oracle knows of one write. Trivial, so that it can live in ``WriteTable``'s raw chunks, where
    /// `seq == 0` marks an id never registered.
    ///
    /// 24 bytes: the oracle keeps one for every write of the run (the lost-write check is decided at its end), so
    /// this is most of what a run's memory grows with. Orders and `saw` positions are per shard, in 32 bits, as
    /// the `saw` positions always were (2^31 edges a shard: tens of billions of writes over 64 shards); past that
    /// the conversions trap. When a delete was sent is the one time the oracle asks of a write after registering it:
    /// it is kept in the shard's `saw` just before the delete's edges (``Oracle/sentAt(_:_:)``), not in every record.
    struct WriteInfo {
        var key: UInt64
        private var seq32: UInt32
        private var ackOrder32: UInt32 = 0
        var sawStart: Int32
        /// The count of writes it saw, and in the top bit whether it is a delete.
        private var sawCountAndDelete: UInt32

        init(key: UInt64, seq: UInt64, sawStart: Int32, sawCount: Int32, isDelete: Bool) {
            self.key = key
            seq32 = UInt32(seq)
            self.sawStart = sawStart
            sawCountAndDelete = UInt32(sawCount) | (isDelete ? 1 << 31 : 0)
        }

        /// Registration order within the shard (from 1): a write can only supersede writes registered before it.
        var seq: UInt64 { UInt64(seq32) }
        /// Acknowledgement order within the shard (from 1; 0: not acknowledged yet). See ``Reach``.
        var ackOrder: UInt64 {
            get { UInt64(ackOrder32) }
            set { ackOrder32 = UInt32(newValue) }
        }
        var sawCount: Int32 { Int32(sawCountAndDelete & 0x7FFF_FFFF) }
        /// A delete: its tombstone may be purged once every replica holds it alone (``deletes(of:liveAt:)``).
        var isDelete: Bool { sawCountAndDelete >> 31 != 0 }
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

    struct Shard {
        var saw: [UInt64] = []
        var nextSeq: UInt64 = 1
        var nextAck: UInt64 = 1
        var keys: [FastKey: KeyWrites] = [:]
        /// Deletes sent, with a `deleteGrace` (while there are none, nothing looks for purged tombstones).
        var deletes = 0
    }

    /// Locked once per write, acknowledgement and read check (``Unretained``).
    let shardRefs: Unretained<Locked<Shard>>
    let mask: Int
    let retention: UInt64
    let deleteGrace: UInt64?
    /// Used from one thread only (the simulator's): the shards are not locked.
    let singleThreaded: Bool
    let table = WriteTable()

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
    public init(shards: Int = 64, retention: UInt64 = 2_000_000_000, deleteGrace: UInt64? = nil,
                singleThreaded: Bool = false) {
        var c = 1
        while c < shards { c <<= 1 }
        shardRefs = Unretained((0..<c).map { _ in Locked(Shard()) })
        mask = c - 1
        self.retention = retention
        self.deleteGrace = deleteGrace
        self.singleThreaded = singleThreaded
    }

    /// What the oracle holds, in bytes: its record of every write (the part that grows with a run's length), the
    /// edges of what each write saw, and the per-key table (not the few recent writes a key's lists keep). Reads
    /// each shard under its lock: call it now and then (a real-time run, once a second), not per operation.
    public func heldBytes() -> Int {
        var bytes = table.bytes
        for i in 0..<shardRefs.count {
            bytes += shardRefs.with(i) { shard in
                let sum: (inout Shard) -> Int = { s in
                    s.saw.capacity * MemoryLayout<UInt64>.stride
                        + s.keys.capacity * (MemoryLayout<FastKey>.stride + MemoryLayout<KeyWrites>.stride)
                }
                return singleThreaded ? shard.withoutLocking(sum) : shard.withLock(sum)
            }
        }
        return bytes
    }

    /// Runs `body` under the lock of `key`'s shard (none when ``singleThreaded``).
    @inline(__always)
    func withShard<R>(_ key: UInt64, _ body: (inout Shard) -> R) -> R {
        shardRefs.with(shardIndex(key)) { singleThreaded ? $0.withoutLocking(body) : $0.withLock(body) }
    }

    @inline(__always)
    func shardIndex(_ key: UInt64) -> Int { Int(truncatingIfNeeded: Hash64.mix(key)) & mask }

    /// The record of write `id`, if it was registered (the caller holds the lock of the write's key's shard).
    @inline(__always)
    func record(_ id: UInt64) -> UnsafeMutablePointer<WriteInfo>? {
        guard let p = table.find(id), p.pointee.seq != 0 else { return nil }
        return p
    }

    /// When delete `id` was sent, if it was registered as one (the caller holds the lock of its key's shard, whose
    /// `saw` this is): the entry before its edges.
    func sentAt(_ id: UInt64, _ saw: [UInt64]) -> UInt64? {
        guard let w = record(id)?.pointee, w.isDelete else { return nil }
        return saw[Int(w.sawStart) - 1]
    }

    /// The writes reachable from `ids` (themselves included) — all of them, or, given `reach`, those a target can
    /// be among. Every write reachable is a write of the same key, so the caller's shard lock covers them all.
    func closure(_ saw: [UInt64], of ids: [UInt64], _ reach: Reach? = nil) -> WriteSet {
        var covered = WriteSet()
        var stack = ids
        while let id = stack.popLast() {
            guard covered.insert(id), let w = record(id)?.pointee, reach?.below(w) ?? true else { continue }
            for i in Int(w.sawStart)..<Int(w.sawStart + w.sawCount) { stack.append(saw[i]) }
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
        let slot = table.make(id)
        withShard(key) { s in
            if delete { s.saw.append(time) }  // (``sentAt(_:_:)``)
            let start = Int32(s.saw.count)
            append(&s.saw)
            var count = count
            if let grace = deleteGrace, s.deletes > 0, time >= grace, let i = s.keys.index(forKey: FastKey(key)) {
                // Each live delete is listed once, so only the ids the write named can repeat one.
                let named = Int(start)..<Int(start) + count
                let old = s.keys.values[i].liveDeletes(sentBy: time - grace, sentAt: { sentAt($0, s.saw) })
                for d in old where !s.saw[named].contains(d) {
                    s.saw.append(d)
                    count += 1
                }
            }
            if delete && deleteGrace != nil {
                s.deletes += 1
                // In the order sent: threads register what they sent a moment ago, so a later one may come first.
                let saw = s.saw  // (released with this block, before `s.saw` grows again: no copy)
                s.keys[FastKey(key), default: KeyWrites()].unacknowledged(delete: id, sentAt: time,
                                                                         by: { sentAt($0, saw) })
            }
            let w = WriteInfo(key: key, seq: s.nextSeq, sawStart: start, sawCount: Int32(count), isDelete: delete)
            slot.pointee = w
            s.nextSeq += 1
        }
    }

    /// A write refused before anything held it (its reply carried no dot: see ``ClientReply/dot``): it never
    /// takes effect. A delete leaves the key's unacknowledged deletes, which reads that find the key empty would
    /// otherwise return and every write sent a grace later would supersede (each a superseded edge, on every
    /// write: at the sibling limit, where most deletes are refused, thousands a write).
    public func refused(id: UInt64, key: UInt64) {
        withShard(key) { s in
            guard s.deletes > 0, let i = s.keys.index(forKey: FastKey(key)),
                let j = s.keys.values[i].unacknowledgedDeletes.lastIndex(of: id)
            else { return }
            s.keys.values[i].unacknowledgedDeletes.remove(at: j)
        }
    }

    /// A write was acknowledged to its client at `time`.
    public func acknowledged(id: UInt64, key: UInt64, at time: UInt64) {
        withShard(key) { s in
            guard let p = record(id), p.pointee.ackOrder == 0 else { return }
            if s.deletes > 0, let i = s.keys.index(forKey: FastKey(key)),
                !s.keys.values[i].unacknowledgedDeletes.isEmpty {
                // Acknowledged, or superseded by a write acknowledged (which now covers what it saw): off the list,
                // which a delete its client gave up on and nothing superseded stays on.
                let w = p.pointee, saw = s.saw[Int(w.sawStart)..<Int(w.sawStart + w.sawCount)]
                s.keys.values[i].unacknowledgedDeletes.removeAll { $0 == id || saw.contains($0) }
            }
            let order = s.nextAck
            s.nextAck += 1
            // Updated in place: a copy of the key's lists would be copied again on the first write.
            supersede(&s.keys[FastKey(key), default: KeyWrites()], by: id, p.pointee, order, at: time, saw: s.saw)
            p.pointee.ackOrder = order  // after the search: it starts from this write
        }
    }

    func supersede(_ k: inout KeyWrites, by id: UInt64, _ w: WriteInfo, _ order: UInt64, at time: UInt64, saw: [UInt64]) {
        // Most acknowledgements need no search (and no Set). A search from the writes this one saw reaches only
        // writes registered no later than the newest of them (a write supersedes writes registered before it), so
        // a live frontier write it did not see and registered after that one is out of its reach. When every live
        // frontier write it did not see is (an update after a read of the key, a thread's next write of it, or a
        // write concurrent with another one), the writes it saw are all it supersedes.
        let direct = saw[Int(w.sawStart)..<Int(w.sawStart + w.sawCount)]
        if !direct.isEmpty {  // (a blind write supersedes nothing)
            var newest: UInt64?  // looked up only if some live write was not seen
            func outOfReach(_ a: Acked) -> Bool {
                if newest == nil { newest = direct.reduce(0) { max($0, record($1)?.pointee.seq ?? 0) } }
                return a.seq > newest!
            }
            if k.frontier.allSatisfy({ $0.removed != 0 || direct.contains($0.id) || outOfReach($0) }) {
                for i in k.frontier.indices where k.frontier[i].removed == 0 && direct.contains(k.frontier[i].id) {
                    k.supersede(at: i, by: order, at: time)
                }
            } else {
                // One search from the new write; what it finds is looked up in the frontier (a search per frontier
                // write, or a membership test for each, made a key with many unsuperseded writes quadratic).
                for x in closure(saw, of: [id], Reach(frontier: k.frontier)) where x != id {
                    if let i = livePosition(of: x, in: k) { k.supersede(at: i, by: order, at: time) }
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
            return missed(&s.keys.values[i], saw: s.saw, start: start, returned: returned)
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

    func missed<R: Collection<UInt64>>(_ k: inout KeyWrites, saw: [UInt64], start: UInt64, returned: R) -> Int {
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
        let covered = closure(saw, of: Array(returned), reach)
        var missed = owed.reduce(0) { $0 + (covered.contains($1.id) ? 0 : 1) }
        if older > 0 {
            // Owed, but for those the read returned or covered: found by looking what it covered up.
            missed += older
            for x in covered {
                if let j = livePosition(of: x, in: k), j < i { missed -= 1 }
            }
        }
        return missed
    }

    /// The frontier position of write `x` in `k`, if it is there and not superseded.
    func livePosition(of x: UInt64, in k: KeyWrites) -> Int? {
        guard let r = record(x), r.pointee.ackOrder != 0, let i = k.position(of: r.pointee.ackOrder),
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
        var reached = [[Bool]](repeating: [], count: shardRefs.count)
        for i in reached.indices {
            shardRefs.objects[i].withLock { s in
                guard s.nextAck > 1 else { return }  // (nothing acknowledged here: nothing to find)
                var marks = [Bool](repeating: false, count: Int(s.nextSeq))
                var stack: [UInt64] = []
                for (key, k) in s.keys {  // (the keys acknowledged writes and deletes made entries for)
                    let held = readAll(key.raw)
                    // Nothing held: the key's tombstones were purged, and its deletes are what it returns.
                    stack.append(contentsOf: held.isEmpty && deleteGrace != nil ? k.liveDeletes() : held)
                    // A delete whose tombstone was purged took effect, and so did what it superseded, even when a
                    // write that had not seen it reached the key afterwards and started it afresh (Riak's
                    // delete_mode): that write, sent within the grace, can arrive after the purge when faults or
                    // queues hold it back. Unless the key holds a write the delete superseded: then it came back.
                    for d in purged(key.raw) where !supersedes(d, anyOf: held, s.saw) { stack.append(d) }
                    while let id = stack.popLast() {
                        guard let w = record(id)?.pointee, w.key == key.raw, !marks[Int(w.seq)] else { continue }
                        marks[Int(w.seq)] = true
                        stack.append(contentsOf: s.saw[Int(w.sawStart)..<Int(w.sawStart + w.sawCount)])
                    }
                }
                reached[i] = marks
            }
        }
        var losses: [Loss] = []
        table.forEach { id, w in
            if w.ackOrder != 0 && !reached[shardIndex(w.key)][Int(w.seq)] { losses.append(Loss(write: id, key: w.key)) }
        }
        return losses
    }

    /// Whether `id` supersedes one of `writes` (a write its context's history holds). Only writes registered after
    /// the oldest of `writes` are searched: a write supersedes only writes registered before it.
    func supersedes(_ id: UInt64, anyOf writes: [UInt64], _ saw: [UInt64]) -> Bool {
        guard let w = record(id)?.pointee else { return false }
        let floor = writes.compactMap { record($0)?.pointee.seq }.min() ?? .max
        var seen = Set<UInt64>()
        var stack = Array(saw[Int(w.sawStart)..<Int(w.sawStart + w.sawCount)])
        while let next = stack.popLast() {
            if writes.contains(next) { return true }
            guard seen.insert(next).inserted, let v = record(next)?.pointee, v.seq > floor else { continue }
            stack.append(contentsOf: saw[Int(v.sawStart)..<Int(v.sawStart + v.sawCount)])
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
                    if let w = record(id)?.pointee, shardIndex(w.key) == index {
                        roots[w.key, default: []].append(id)
                    }
                }
                var covered: [UInt64: WriteSet] = [:]
                for l in list {
                    if covered[l.key] == nil {
                        covered[l.key] = closure(s.saw, of: roots[l.key] ?? [])
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

/// The oracle's records of writes, by id. The ids the load generator makes, `(thread + 1) << 48 | n` with n
/// counting from 1, are *covered*: slot `id >> 48`, index n, in chunks of 16,384 records that never move once
/// made — finding a write is two loads, not a hash-table probe, and a thread's recent writes sit together in
/// memory (the hash table this replaced missed the cache on most lookups once it held millions of writes). Any
/// other id (the PBS probe's) gets a record of its own, found through `others` under `lock`.
///
/// Synchronization: a record is read and written only under the lock of its key's oracle shard. Chunks (and a
/// slot's chunk directory) are made under `lock` and published with a release store; lookups load them with
/// acquire, so a lookup of an id from another slot or chunk never races with their creation. `lock` is only ever
/// taken inside a shard lock or under none, never the other way round.
final class WriteTable: @unchecked Sendable {
    typealias WriteInfo = Oracle.WriteInfo
    static let chunkShift = 14
    static let slotCount = 256
    static let chunksPerSlot = 1 << 18  // 2^32 writes per slot
    /// Per slot: the address of its chunk directory, or 0.
    let directories: UnsafeMutablePointer<Int64>
    /// Records of ids the chunks do not cover.
    let others = Locked<[UInt64: UnsafeMutablePointer<WriteInfo>]>([:])
    let lock = Locked(())
    /// The bytes of the chunks allocated (written under `lock`, read by ``bytes``).
    let allocated = Atomic<Int>(0)

    /// What the chunks and the records outside them take. (Not the directories: 2 MiB each, calloc'd, of which
    /// a page is touched for every 512 chunks.)
    var bytes: Int {
        allocated.load(ordering: .relaxed) + others.withLock { $0.count } * (MemoryLayout<WriteInfo>.stride + 32)
    }

    init() {
        directories = .allocate(capacity: Self.slotCount)
        directories.initialize(repeating: 0, count: Self.slotCount)
    }

    deinit {
        for slot in 0..<Self.slotCount {
            guard let dir = UnsafeMutablePointer<Int64>(bitPattern: Int(directories[slot])) else { continue }
            for c in 0..<Self.chunksPerSlot where dir[c] != 0 { free(UnsafeMutableRawPointer(bitPattern: Int(dir[c]))) }
            free(dir)
        }
        directories.deallocate()
        others.withLock { for (_, p) in $0 { free(p) } }
    }

    /// Whether `id` has a place in the chunks.
    @inline(__always)
    func covers(_ id: UInt64) -> Bool {
        id >> 48 < UInt64(Self.slotCount) && id & 0xFFFF_FFFF_FFFF < UInt64(Self.chunksPerSlot) << UInt64(Self.chunkShift)
    }

    /// The record of `id`, nil if none was ever made (then it was never registered).
    @inline(__always)
    func find(_ id: UInt64) -> UnsafeMutablePointer<WriteInfo>? {
        guard covers(id) else { return others.withLock { $0[id] } }
        let index = Int(truncatingIfNeeded: id & 0xFFFF_FFFF_FFFF)
        guard let dir = UnsafeMutablePointer<Int64>(bitPattern: Int(qb_load_acquire(directories + Int(id >> 48)))),
            let chunk = UnsafeMutablePointer<WriteInfo>(bitPattern: Int(qb_load_acquire(dir + index >> Self.chunkShift)))
        else { return nil }
        return chunk + index & (1 << Self.chunkShift - 1)
    }

    /// The record of `id` (zeroed if new: `seq` 0, not registered yet), its chunk made if need be.
    @inline(__always)
    func make(_ id: UInt64) -> UnsafeMutablePointer<WriteInfo> {
        guard covers(id) else {
            return others.withLock { o in
                if let p = o[id] { return p }
                let p = calloc(1, MemoryLayout<WriteInfo>.stride)!.assumingMemoryBound(to: WriteInfo.self)
                o[id] = p
                return p
            }
        }
        if let p = find(id) { return p }
        return lock.withLock { _ in
            let slot = directories + Int(id >> 48)
            if slot.pointee == 0 {
                let dir = calloc(Self.chunksPerSlot, MemoryLayout<Int64>.size)!
                qb_store_release(slot, Int64(Int(bitPattern: dir)))
            }
            let dir = UnsafeMutablePointer<Int64>(bitPattern: Int(slot.pointee))!
            let c = Int(truncatingIfNeeded: id & 0xFFFF_FFFF_FFFF) >> Self.chunkShift
            if dir[c] == 0 {
                // Zeroed: seq 0 marks every record as not registered.
                let chunk = calloc(1 << Self.chunkShift, MemoryLayout<WriteInfo>.stride)!
                qb_store_release(dir + c, Int64(Int(bitPattern: chunk)))
                allocated.add((1 << Self.chunkShift) * MemoryLayout<WriteInfo>.stride, ordering: .relaxed)
            }
            return find(id)!
        }
    }

    /// Every registered write. Call when nothing registers writes any more.
    func forEach(_ body: (UInt64, WriteInfo) -> Void) {
        for slot in 0..<Self.slotCount {
            guard let dir = UnsafeMutablePointer<Int64>(bitPattern: Int(qb_load_acquire(directories + slot))) else { continue }
            for c in 0..<Self.chunksPerSlot {
                guard let chunk = UnsafeMutablePointer<WriteInfo>(bitPattern: Int(qb_load_acquire(dir + c))) else { continue }
                for i in 0..<1 << Self.chunkShift where chunk[i].seq != 0 {
                    body(UInt64(slot) << 48 | UInt64(c << Self.chunkShift + i), chunk[i])
                }
            }
        }
        for (id, p) in others.withLock({ $0 }) where p.pointee.seq != 0 { body(id, p.pointee) }
    }
}
