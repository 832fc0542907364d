import BufferPool

/// How replicas resolve concurrent writes.
public enum Versioning: String, Sendable, CaseIterable {
    /// Dotted version vectors: concurrent writes are kept as siblings.
    case vv
    /// Last write wins by coordinator timestamp, node id breaking ties: one version survives.
    case lww
}

/// One version of a key's value.
public struct Version: Sendable, CustomStringConvertible {
    /// The write that made it.
    public var dot: Dot
    /// What that write had seen (`vv` mode); the versions it covers are superseded by this one.
    public var context: CausalContext
    /// Coordinator timestamp (ns of the coordinator's clock, made strictly increasing per coordinator); `lww` orders
    /// by it.
    public var stamp: UInt64
    /// The value. A tombstone may carry one too (the load generator stores the delete's write id in it).
    public var value: PoolBuffer?
    /// Whether this version is a delete.
    public var isTombstone: Bool

    public init(dot: Dot, context: CausalContext, stamp: UInt64, value: PoolBuffer?, tombstone: Bool = false) {
        self.dot = dot
        self.context = context
        self.stamp = stamp
        self.value = value
        self.isTombstone = tombstone
    }

    /// The `lww` order: timestamp, then actor (node id), then counter.
    @inlinable
    public func wins(over other: Version) -> Bool {
        if stamp != other.stamp { return stamp > other.stamp }
        if dot.actor.raw != other.dot.actor.raw { return dot.actor.raw > other.dot.actor.raw }
        return dot.counter > other.dot.counter
    }

    public var description: String {
        "\(dot)\(context)" + (isTombstone ? "⊥" : "") + (value.map { "[\($0.count)B]" } ?? "") + "@\(stamp)"
    }
}

/// The state of one key: the versions that no other version supersedes.
///
/// Every operation here owns the buffers it is given: versions it drops have their buffers released to `pool`.
public enum Siblings {
    /// Merges `incoming` into `state`: in `vv` mode keeps every version whose dot no other version's context
    /// covers (duplicates by dot collapse); in `lww` mode keeps the single winner. Returns whether `state` changed.
    @discardableResult
    public static func merge(
        _ state: inout [Version], _ incoming: [Version], mode: Versioning, pool: BufferPool
    ) -> Bool {
        if incoming.isEmpty { return false }
        switch mode {
        case .lww:
            var winner: Version? = state.first
            var changed = false
            for v in state.dropFirst() { pool.releaseValue(of: v) }
            if state.count > 1 { changed = true }
            for v in incoming {
                if let w = winner {
                    if v.dot == w.dot {
                        pool.releaseValue(of: v)
                    } else if v.wins(over: w) {
                        pool.releaseValue(of: w)
                        winner = v
                        changed = true
                    } else {
                        pool.releaseValue(of: v)
                    }
                } else {
                    winner = v
                    changed = true
                }
            }
            if changed { state = winner.map { [$0] } ?? [] }
            return changed
        case .vv:
            var changed = false
            // Versions are read in place (through buffer pointers) wherever only a field is needed: a copy of a
            // version retains and releases its context, the cold array of a key touched by this message only.
            incoming.withUnsafeBufferPointer { incoming in
                for j in incoming.indices {
                    // Already here, or superseded by something here: drop it. Dots first: a replica write carries
                    // the coordinator's whole state, mostly versions the replica holds, and a dot is in the
                    // version itself where a context is one more (cold) array to read.
                    let dot = incoming[j].dot
                    let known = state.withUnsafeBufferPointer { s in
                        for k in s.indices where s[k].dot == dot { return true }
                        for k in s.indices where s[k].context.covers(dot) { return true }
                        return false
                    }
                    if known {
                        if let value = incoming[j].value { pool.release(value) }
                        continue
                    }
                    supersede(&state, by: incoming[j], pool: pool)
                    changed = true
                }
            }
            return changed
        }
    }

    /// `vv` mode, what a sibling limit checks before it takes a write: whether merging `incoming` into `state`
    /// would leave more than `limit` versions (those of `state` no incoming version covers, and the incoming ones
    /// `state` does not know). Only the bound `state.count + incoming.count` is computed unless it passes `limit`.
    ///
    /// Only the incoming versions the state lacks are tested against contexts: a version both hold is one version
    /// (a dot names one), and no version of a state covers another (merging keeps only those none covers), so
    /// the others can cover nothing here. Testing every version of one side against every context of the other
    /// was quadratic, and a key held at the limit is where it runs, on every write that reaches it: a replica
    /// write carries the coordinator's whole state, so at `--max-siblings 100` ~20,000 context searches a write,
    /// and a 3 s simulation of ten keys so held (concurrent deletes under strict quorums and partitions) ran for
    /// over 5 minutes. Now ~100 × 100 dot comparisons and a context search per pair of a new version and a held one.
    public static func exceeds(_ limit: Int, merging incoming: [Version], into state: [Version]) -> Bool {
        if state.count + incoming.count <= limit { return false }
        return state.withUnsafeBufferPointer { state in
            incoming.withUnsafeBufferPointer { incoming in
                var new: [Int] = []
                for j in incoming.indices where !state.contains(where: { $0.dot == incoming[j].dot }) { new.append(j) }
                var count = new.count(where: { j in !state.contains { $0.context.covers(incoming[j].dot) } })
                for i in state.indices where !new.contains(where: { incoming[$0].context.covers(state[i].dot) }) {
                    count += 1
                }
                return count > limit
            }
        }
    }

    /// `vv` mode: whether a new version with `context` would leave more than `limit` versions: those of `state`
    /// the context does not cover, and itself.
    public static func exceeds(_ limit: Int, writingWith context: CausalContext, into state: [Version]) -> Bool {
        if state.count + 1 <= limit { return false }
        return state.lazy.filter { !context.covers($0.dot) }.count + 1 > limit
    }

    /// `vv` mode: adds `v`, which nothing in `state` covers, dropping the versions its context covers.
    @inlinable
    public static func supersede(_ state: inout [Version], by v: consuming Version, pool: BufferPool) {
        var i = 0
        while i < state.count {
            if state.withUnsafeBufferPointer({ v.context.covers($0[i].dot) }) {
                pool.releaseValue(of: state.remove(at: i))
            } else {
                i += 1
            }
        }
        state.append(v)
    }

    /// The history a state summarizes: every version's context and dot. The context a client gets with a read.
    public static func clock(of state: [Version]) -> CausalContext {
        var c = CausalContext()
        state.withUnsafeBufferPointer { s in  // read in place: a copy of a version retains its context and value
            for i in s.indices {
                c.merge(s[i].context)
                c.add(s[i].dot)
            }
        }
        return c
    }

    /// Whether two states hold the same versions (same dots).
    public static func same(_ a: [Version], _ b: [Version]) -> Bool {
        a.count == b.count && a.allSatisfy { v in b.contains { $0.dot == v.dot } }
    }

    /// True when every version of the state is a tombstone (and there is at least one).
    public static func deleted(_ state: [Version]) -> Bool { !state.isEmpty && state.allSatisfy(\.isTombstone) }

    /// Copies of the versions for a message, each with its own handle to the value (``BufferPool/share(_:)``:
    /// the same bytes when the value is shareable, as the values clients write are). When every value is
    /// shareable the array itself is not copied either: the result is `state` with one more handle to each value
    /// (an immutable snapshot however `state`'s owner changes its own array later). Copying the array retained
    /// every version's context and allocated, once for each remote replica of a write and for each read.
    public static func copy(_ state: [Version], pool: BufferPool) -> [Version] {
        let shareable = state.withUnsafeBufferPointer { s in
            for i in s.indices where !(s[i].value?.isShareable ?? true) { return false }
            for i in s.indices { if let value = s[i].value { _ = pool.share(value) } }
            return true
        }
        if shareable { return state }
        return state.map { v in
            var c = v
            if let value = v.value { c.value = pool.share(value) }
            return c
        }
    }

    /// Releases every value of the versions.
    public static func release(_ state: [Version], pool: BufferPool) {
        state.withUnsafeBufferPointer { s in
            for i in s.indices { if let value = s[i].value { pool.release(value) } }
        }
    }
}

extension BufferPool {
    /// Releases the version's value buffer, if it has one.
    @inlinable
    public func releaseValue(of version: Version) {
        if let value = version.value { release(value) }
    }
}
