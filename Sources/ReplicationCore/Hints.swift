import BufferPool

/// Writes a node holds as a fallback for replicas that were suspected when the write was made: kept apart from
/// the node's own data, per owner, merged per key, bounded per owner and in total (past a bound a new hinted key
/// is dropped and counted, as Cassandra's hint window), and handed over when the owner answers again.
public final class HintStore {
    public let mode: Versioning
    public let pool: BufferPool
    public let perOwner: Int
    public let total: Int
    @exclusivity(unchecked) var byOwner: [Int: [FastKey: [Version]]] = [:]
    /// Per owner, keys in the order they were first hinted (with keys since delivered left in until compaction):
    /// handoff goes oldest first, in an order that does not depend on hashing.
    @exclusivity(unchecked) var order: [Int: [UInt64]] = [:]
    /// Hinted keys held, over every owner.
    @exclusivity(unchecked) public private(set) var count = 0

    public init(mode: Versioning, pool: BufferPool, perOwner: Int, total: Int) {
        self.mode = mode
        self.pool = pool
        self.perOwner = perOwner
        self.total = total
    }

    deinit { wipe() }

    /// Merges a hinted write for `owner` (taking ownership of the buffers). Returns false if it was dropped
    /// because a bound was reached (its buffers released).
    public func store(owner: Int, key: UInt64, _ versions: [Version]) -> Bool {
        let k = FastKey(key)
        let known = byOwner[owner]?[k] != nil
        if !known && (count >= total || (byOwner[owner]?.count ?? 0) >= perOwner) {
            Siblings.release(versions, pool: pool)
            return false
        }
        if !known {
            count += 1
            order[owner, default: []].append(key)
        }
        Siblings.merge(&byOwner[owner, default: [:]][k, default: []], versions, mode: mode, pool: pool)
        return true
    }

    /// The hinted state of `key`, over every owner (copies), for a read that reached this node as a fallback.
    public func copyState(of key: UInt64) -> [Version] {
        var state: [Version] = []
        for owner in owners {
            if let s = byOwner[owner]![FastKey(key)] { Siblings.merge(&state, Siblings.copy(s, pool: pool), mode: mode, pool: pool) }
        }
        return state
    }

    /// Calls `body` with every hinted key's versions (not copied).
    public func forEach(_ body: (_ owner: Int, _ key: UInt64, _ versions: [Version]) -> Void) {
        for owner in owners { for (k, s) in byOwner[owner]! { body(owner, k.raw, s) } }
    }

    /// Whether a hint for `key` is held here (for any owner).
    public func holds(_ key: UInt64) -> Bool { byOwner.values.contains { $0[FastKey(key)] != nil } }

    /// Owners that have hints here.
    public var owners: [Int] { byOwner.keys.sorted() }

    /// Hinted keys held for `owner`.
    public func count(for owner: Int) -> Int { byOwner[owner]?.count ?? 0 }

    /// Up to `limit` of `owner`'s hinted keys that `skip` does not exclude, with copies of their versions.
    public func batch(for owner: Int, limit: Int, skip: (UInt64) -> Bool) -> [(key: UInt64, versions: [Version])] {
        guard let hints = byOwner[owner], limit > 0 else { return [] }
        if let keys = order[owner], keys.count > 2 * hints.count + 64 {
            order[owner] = keys.filter { hints[FastKey($0)] != nil }
        }
        var out: [(UInt64, [Version])] = []
        var seen = Set<UInt64>()
        for key in order[owner] ?? [] where !skip(key) {
            guard let state = hints[FastKey(key)], seen.insert(key).inserted else { continue }
            out.append((key, Siblings.copy(state, pool: pool)))
            if out.count == limit { break }
        }
        return out
    }

    /// The owner acknowledged `key` with the versions `dots`: the hint goes, unless it has changed since.
    /// Returns whether it was removed.
    @discardableResult
    public func delivered(owner: Int, key: UInt64, dots: [Dot]) -> Bool {
        let k = FastKey(key)
        guard let state = byOwner[owner]?[k], state.count == dots.count,
            state.allSatisfy({ v in dots.contains(v.dot) })
        else { return false }
        Siblings.release(state, pool: pool)
        byOwner[owner]![k] = nil
        if byOwner[owner]!.isEmpty {
            byOwner[owner] = nil
            order[owner] = nil
        }
        count -= 1
        return true
    }

    /// Forgets every hint (a node that comes back empty).
    public func wipe() {
        for (_, hints) in byOwner { for (_, s) in hints { Siblings.release(s, pool: pool) } }
        byOwner.removeAll()
        order.removeAll()
        count = 0
    }
}
