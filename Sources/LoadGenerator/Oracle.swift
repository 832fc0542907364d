import ReplicationCore
import SyncPrimitives

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
    struct WriteInfo {
        var key: UInt64
        /// Registration order within the shard: a write can only supersede writes registered before it.
        var seq: UInt64
        var ackedAt: UInt64 = 0
        var sawStart: Int32
        var sawCount: Int32
    }

    struct Acked {
        var id: UInt64
        var ackedAt: UInt64
        var seq: UInt64
        /// When a write that supersedes it was acknowledged (0: not yet).
        var supersededAt: UInt64 = 0
    }

    /// Per key: acknowledged writes no acknowledged write supersedes yet, and those superseded recently (in the
    /// order they were superseded), kept for reads that began before the superseding acknowledgement.
    struct KeyWrites {
        var frontier: [Acked] = []
        var superseded: [Acked] = []
    }

    struct Shard {
        var writes: [FastKey: WriteInfo] = [:]
        var saw: [UInt64] = []
        var nextSeq: UInt64 = 1
        var keys: [FastKey: KeyWrites] = [:]

        /// Every write reachable from `ids` (themselves included), not searching below `floor`: a write only
        /// supersedes writes registered before it, so nothing older than the oldest write asked about matters.
        static func closure(
            _ writes: [FastKey: WriteInfo], _ saw: [UInt64], of ids: [UInt64], floor: UInt64
        ) -> Set<UInt64> {
            var covered = Set<UInt64>()
            var stack = ids
            while let id = stack.popLast() {
                guard covered.insert(id).inserted, let w = writes[FastKey(id)], w.seq > floor else { continue }
                for i in Int(w.sawStart)..<Int(w.sawStart + w.sawCount) { stack.append(saw[i]) }
            }
            return covered
        }

        /// Every write reachable from `ids` (themselves included).
        func closure(of ids: [UInt64]) -> Set<UInt64> {
            var covered = Set<UInt64>()
            var stack = ids
            while let id = stack.popLast() {
                guard covered.insert(id).inserted, let w = writes[FastKey(id)] else { continue }
                for i in Int(w.sawStart)..<Int(w.sawStart + w.sawCount) { stack.append(saw[i]) }
            }
            return covered
        }
    }

    let shards: [Locked<Shard>]
    let mask: Int
    let retention: UInt64

    /// - Parameter retention: how long a superseded write stays checkable: longer than any read can take
    ///   (the request timeout plus delays).
    public init(shards: Int = 64, retention: UInt64 = 2_000_000_000) {
        var c = 1
        while c < shards { c <<= 1 }
        self.shards = (0..<c).map { _ in Locked(Shard()) }
        mask = c - 1
        self.retention = retention
    }

    @inline(__always)
    func shard(_ key: UInt64) -> Locked<Shard> { shards[shardIndex(key)] }

    @inline(__always)
    func shardIndex(_ key: UInt64) -> Int { Int(truncatingIfNeeded: Hash64.mix(key)) & mask }

    /// A write is about to be sent.
    public func wrote(id: UInt64, key: UInt64, saw: [UInt64]) {
        shard(key).withLock { s in
            let start = Int32(s.saw.count)
            s.saw.append(contentsOf: saw)
            s.writes[FastKey(id)] = WriteInfo(key: key, seq: s.nextSeq, sawStart: start, sawCount: Int32(saw.count))
            s.nextSeq += 1
        }
    }

    /// A write was acknowledged to its client at `time`.
    public func acknowledged(id: UInt64, key: UInt64, at time: UInt64) {
        shard(key).withLock { s in
            guard let at = s.writes.index(forKey: FastKey(id)) else { return }
            s.writes.values[at].ackedAt = time
            let w = s.writes.values[at]
            // Updated in place: a copy of the key's lists would be copied again on the first write.
            Oracle.supersede(&s.keys[FastKey(key), default: KeyWrites()], by: id, w, at: time,
                             retention: retention, writes: s.writes, saw: s.saw)
        }
    }

    static func supersede(
        _ k: inout KeyWrites, by id: UInt64, _ w: WriteInfo, at time: UInt64, retention: UInt64,
        writes: [FastKey: WriteInfo], saw: [UInt64]
    ) {
        // One search from the new write, bounded by the oldest candidate, then a membership test per candidate
        // (a search per candidate made a key with many unsuperseded writes — lost ones under lww — quadratic).
        guard let floor = k.frontier.lazy.map(\.seq).min() else {
            k.frontier.append(Acked(id: id, ackedAt: time, seq: w.seq))
            return
        }
        // The common case needs no search (and no Set): the write saw every frontier write itself — an update
        // after a read of the key, or a thread's next write of it.
        let direct = saw[Int(w.sawStart)..<Int(w.sawStart + w.sawCount)]
        let covered: Set<UInt64>? = k.frontier.allSatisfy({ $0.id == id || direct.contains($0.id) })
            ? nil : Shard.closure(writes, saw, of: [id], floor: floor)  // nil: every frontier write
        var i = 0
        while i < k.frontier.count {
            if k.frontier[i].id != id && covered?.contains(k.frontier[i].id) ?? true {
                var gone = k.frontier.remove(at: i)
                gone.supersededAt = time
                k.superseded.append(gone)
            } else {
                i += 1
            }
        }
        // Forget what no read still in flight can have begun before.
        if let first = k.superseded.first, first.supersededAt &+ retention < time {
            k.superseded.removeAll { $0.supersededAt &+ retention < time }
        }
        k.frontier.append(Acked(id: id, ackedAt: time, seq: w.seq))
    }

    /// Classifies an ok read that started at `start` and returned `returned`: how many acknowledged writes it
    /// missed (0: fresh). A write counts if it was acknowledged before the read began and nothing acknowledged
    /// before the read began supersedes it.
    public func missed(key: UInt64, start: UInt64, returned: [UInt64]) -> Int {
        shard(key).withLock { s in
            guard let k = s.keys[FastKey(key)] else { return 0 }
            // The writes the read owed and did not return: acknowledged before it began, and not superseded
            // before it began (those superseded after it began are still owed; newest first, stop at the old
            // ones). In the common case there is none, and nothing is allocated.
            func unreturned(_ a: Acked) -> Bool { a.ackedAt < start && !returned.contains(a.id) }
            var owed = k.frontier.filter(unreturned)
            for a in k.superseded.reversed() {
                if a.supersededAt < start { break }
                if unreturned(a) { owed.append(a) }
            }
            if owed.isEmpty { return 0 }
            // One search from what the read returned, bounded by the oldest write owed.
            let floor = owed.lazy.map(\.seq).min()!
            let covered = Shard.closure(s.writes, s.saw, of: returned, floor: floor)
            return owed.reduce(0) { $0 + (covered.contains($1.id) ? 0 : 1) }
        }
    }

    /// A lost write and why.
    public struct Loss: Sendable {
        public var write: UInt64
        public var key: UInt64
    }

    /// Every key's lost writes, given a reader of all replicas. Groups the work by shard.
    /// The acknowledged writes that are neither in what a read of all replicas of their key returns (`readAll`)
    /// nor superseded by anything in it. Call when the run is quiescent.
    public func lostWrites(readAll: (UInt64) -> [UInt64]) -> [Loss] {
        var losses: [Loss] = []
        for shard in shards {
            shard.withLock { s in
                var acked: [UInt64: [UInt64]] = [:]
                for (id, w) in s.writes where w.ackedAt != 0 { acked[w.key, default: []].append(id.raw) }
                for (key, ids) in acked {
                    let covered = s.closure(of: readAll(key))
                    for id in ids where !covered.contains(id) { losses.append(Loss(write: id, key: key)) }
                }
            }
        }
        return losses
    }

    /// How many of `losses` no write in `held` explains: a loss is explained when the lost write itself, or a
    /// write that supersedes it, is in `held` (the writes some wiped node held when it was wiped). A write lost
    /// because its superseder was wiped is lost too: what superseded it on the surviving replicas is gone.
    public func unexplained(_ losses: [Loss], by held: Set<UInt64>) -> [Loss] {
        var byShard: [Int: [Loss]] = [:]
        for l in losses { byShard[shardIndex(l.key), default: []].append(l) }
        var out: [Loss] = []
        for (index, list) in byShard {
            shards[index].withLock { s in
                // One pass over the shard's writes: the held ones, by key.
                var roots: [UInt64: [UInt64]] = [:]
                for (id, w) in s.writes where held.contains(id.raw) { roots[w.key, default: []].append(id.raw) }
                var covered: [UInt64: Set<UInt64>] = [:]
                for l in list {
                    if covered[l.key] == nil { covered[l.key] = s.closure(of: roots[l.key] ?? []) }
                    if !covered[l.key]!.contains(l.write) { out.append(l) }
                }
            }
        }
        return out
    }
}
