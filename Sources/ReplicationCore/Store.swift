import BufferPool

/// One node's versioned store: key → the versions no other version supersedes.
///
/// Touched by its node only (one thread). Values live in `BufferPool` buffers owned by the store: versions it
/// drops are released, versions it hands out are copies.
public final class VersionedStore {
    public let mode: Versioning
    public let pool: BufferPool
    /// A key's versions and their digest (``MerkleForest/digest(key:_:)``), kept with them: a digest read and the
    /// Merkle update of a write need it, and computing it afresh each time was 5% of a run.
    @usableFromInline struct Entry {
        @usableFromInline var versions: [Version] = []
        @usableFromInline var digest: UInt64 = 0
        @inlinable init() {}
    }
    @exclusivity(unchecked) @usableFromInline var data: [FastKey: Entry] = [:]
    /// Last counter this node used for a dot (per incarnation; strictly increasing across keys, so a purged key
    /// never sees a counter reused).
    @exclusivity(unchecked) public private(set) var lastCounter: UInt64 = 0
    /// Last timestamp this node gave a version: stamps are strictly increasing per node.
    @exclusivity(unchecked) public private(set) var lastStamp: UInt64 = 0
    /// Per purged key, what its purged tombstones had seen (their contexts, merged). A version they superseded
    /// that arrives after the purge — a hint handed off after a partition longer than the grace, a message delayed
    /// past it — is dropped instead of bringing the deleted key back (the resurrection Riak's `delete_mode` and
    /// Cassandra's `gc_grace_seconds` warn of). A tombstone's own dot is not in it: a replica that missed the
    /// purge hands the tombstone back through repair, and the replicas converge on it.
    @exclusivity(unchecked) var purgedHistory: [FastKey: CausalContext] = [:]
    /// Versions dropped because a purged tombstone of their key had superseded them.
    @exclusivity(unchecked) public private(set) var lateVersionsDropped = 0
    /// Anti-entropy's Merkle trees, kept up to date on every change (nil: anti-entropy off).
    public var merkle: MerkleForest?
    /// Called with a key and its tombstones as the purge rule removes them (``purge(key:dots:)``): the run's
    /// lost-write check counts a purged delete as applied, whatever was written to the key afterwards.
    public var onPurge: ((_ key: UInt64, _ tombstones: [Version]) -> Void)?

    public init(mode: Versioning, pool: BufferPool) {
        self.mode = mode
        self.pool = pool
    }

    deinit { wipe() }

    /// Number of keys held (tombstones included).
    public var keyCount: Int { data.count }

    /// The state of `key` (not copied: read it, don't keep it).
    @inlinable
    public func state(of key: UInt64) -> [Version] { data[FastKey(key)]?.versions ?? [] }

    /// The state of `key` (not copied) and its digest (0: no state).
    @inlinable
    public func stateAndDigest(of key: UInt64) -> (state: [Version], digest: UInt64) {
        guard let e = data[FastKey(key)] else { return ([], 0) }
        return (e.versions, e.digest)
    }

    /// Every key held.
    public var keys: [UInt64] { data.keys.map(\.raw) }

    /// Coordinates a write as a replica, with one lookup of the key: gives it a dot for `actor` (this node's
    /// replica actor) and a timestamp, merges it, and returns the key's resulting state (not copied) and the new
    /// version's dot.
    ///
    /// The dot's counter is the node's next: above every counter this node used under this incarnation, so above
    /// every counter of `actor` any context holds (a node that comes back empty writes under a new incarnation),
    /// and no version here can cover it — nothing about the key's versions needs reading but their dots.
    ///
    /// With a sibling `limit` (`vv`, > 0) a write that would leave the key with more versions than that is refused:
    /// nil, and nothing changes (the value stays the caller's).
    public func coordinateWrite(
        key: UInt64, actor: Actor, context: CausalContext, value: PoolBuffer?, tombstone: Bool, now: UInt64,
        limit: Int = 0
    ) -> (state: [Version], dot: Dot)? {
        var result: [Version]?
        var dot = Dot(actor: actor, counter: 0)
        let pool = self.pool, mode = self.mode
        withEntry(key) { e in
            if mode == .vv && limit > 0 && Siblings.exceeds(limit, writingWith: context, into: e.versions) { return }
            lastCounter += 1
            dot = Dot(actor: actor, counter: lastCounter)
            let version = Version(dot: dot, context: context, stamp: nextStamp(now: now), value: value, tombstone: tombstone)
            if e.versions.isEmpty {
                e.versions = [version]  // a new key (an insert): appending to the empty array grew it (~800 instructions)
            } else if mode == .vv {
                Siblings.supersede(&e.versions, by: version, pool: pool)
            } else {
                Siblings.merge(&e.versions, [version], mode: mode, pool: pool)
            }
            changed(key, &e)
            result = e.versions
        }
        return result.map { ($0, dot) }
    }

    /// In-place access to a key's entry (created empty if absent).
    @inline(__always)
    func withEntry(_ key: UInt64, _ body: (inout Entry) -> Void) {
        body(&data[FastKey(key), default: Entry()])
    }

    /// The versions of `e` changed: its new digest, and the Merkle tree's leaf.
    @inline(__always)
    func changed(_ key: UInt64, _ e: inout Entry) {
        let new = MerkleForest.digest(key: key, e.versions)
        merkle?.update(hash: Key(key).hash, old: e.digest, new: new)
        e.digest = new
    }

    /// A strictly increasing timestamp not before `now`.
    public func nextStamp(now: UInt64) -> UInt64 {
        lastStamp = max(now, lastStamp + 1)
        return lastStamp
    }

    /// Merges `versions` (taking ownership of their buffers). Returns whether the state changed.
    @discardableResult
    public func apply(key: UInt64, _ versions: [Version]) -> Bool { apply(key: key, versions, limit: 0) ?? false }

    /// Merges `versions` (taking ownership of their buffers) unless, with a sibling `limit` (`vv`, > 0), that would
    /// leave the key with more versions than that: then nil, and the buffers are released. Otherwise whether the
    /// state changed.
    public func apply(key: UInt64, _ versions: [Version], limit: Int) -> Bool? {
        if versions.isEmpty { return false }
        if !purgedHistory.isEmpty, let seen = purgedHistory[FastKey(key)],
            versions.contains(where: { seen.covers($0.dot) }) {
            var kept: [Version] = []
            for v in versions {
                if !seen.covers(v.dot) {
                    kept.append(v)
                } else {
                    lateVersionsDropped += 1
                    pool.releaseValue(of: v)
                }
            }
            return kept.isEmpty ? false : merge(key: key, kept, limit: limit)
        }
        return merge(key: key, versions, limit: limit)  // (a copy of `versions` to filter cost a retain and a release)
    }

    @inline(__always)
    func merge(key: UInt64, _ versions: [Version], limit: Int) -> Bool? {
        var didChange: Bool? = false
        withEntry(key) { e in
            if mode == .vv && limit > 0 && Siblings.exceeds(limit, merging: versions, into: e.versions) {
                Siblings.release(versions, pool: pool)
                didChange = nil
                return
            }
            if e.versions.isEmpty && versions.count == 1 {
                e.versions = versions  // a key new here takes the one version as it is (merging appended a copy)
                didChange = true
            } else {
                didChange = Siblings.merge(&e.versions, versions, mode: mode, pool: pool)
            }
            if didChange == true { changed(key, &e) }
        }
        return didChange
    }

    /// The tombstone purge rule: removes `key` only if its state is exactly tombstones with these dots.
    @discardableResult
    public func purge(key: UInt64, dots: [Dot]) -> Bool {
        guard let e = data[FastKey(key)], case let state = e.versions, Siblings.deleted(state),
            state.count == dots.count, state.allSatisfy({ v in dots.contains(v.dot) })
        else { return false }
        merkle?.update(hash: Key(key).hash, old: e.digest, new: 0)
        var seen = purgedHistory[FastKey(key)] ?? .empty
        for v in state { seen.merge(v.context) }
        purgedHistory[FastKey(key)] = seen
        onPurge?(key, state)
        Siblings.release(state, pool: pool)
        data[FastKey(key)] = nil
        return true
    }

    /// Forgets everything (a node that comes back empty).
    public func wipe() {
        for (_, e) in data { Siblings.release(e.versions, pool: pool) }
        data.removeAll()
        purgedHistory.removeAll()
        merkle?.reset()
        lastCounter = 0  // as a process that starts empty: only the node's new incarnation keeps its dots unique
    }

    /// Calls `body` with every key and its state (not copied).
    public func forEach(_ body: (UInt64, [Version]) -> Void) {
        for (k, e) in data { body(k.raw, e.versions) }
    }

    /// Calls `body` with every key held (the key table only: no key's versions are read).
    public func forEachKey(_ body: (UInt64) -> Void) {
        for k in data.keys { body(k.raw) }
    }

    /// Whether `key` is held (tombstones and an emptied key included), without reading its versions.
    @inlinable
    public func holds(_ key: UInt64) -> Bool { data.index(forKey: FastKey(key)) != nil }

    /// Whether this store and `other` hold the same versions of `key` (``Siblings/same(_:_:)``; a key not held
    /// has none), read in place.
    public func same(_ key: UInt64, as other: VersionedStore) -> Bool {
        let k = FastKey(key)
        guard let i = data.index(forKey: k) else { return other.data[k]?.versions.isEmpty ?? true }
        guard let j = other.data.index(forKey: k) else { return data.values[i].versions.isEmpty }
        return Siblings.same(data.values[i].versions, other.data.values[j].versions)
    }

    /// Calls `body` with every key and its state's digest.
    public func forEachDigest(_ body: (UInt64, UInt64) -> Void) {
        for (k, e) in data { body(k.raw, e.digest) }
    }

}
