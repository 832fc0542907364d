/// Consistent hashing with virtual nodes.
///
/// The hash space is cut into `nodes × vnodes` equal partitions (Dynamo's "strategy 3": equal-sized partitions,
/// each node claiming `vnodes` of them), and a key belongs to the partition its 64-bit hash falls in. Partitions are
/// claimed from one seeded shuffle so that every node owns exactly `vnodes` of them, and no node appears twice
/// within any `spacing` consecutive partitions (Riak's `target_n_val`), so that the first n partitions clockwise
/// already name n distinct nodes. Equal partitions give an exact balance, where random tokens would leave a node
/// with 64 vnodes about ±12% off the mean.
///
/// A key's preference list is the first n distinct nodes clockwise from its partition, followed by every other node
/// in ring order: the fallbacks of a sloppy quorum. Lists are precomputed per partition, so a lookup is a multiply,
/// a shift and an index. The lists live in memory of the ring's own and are handed out as ``NodeList``s, views
/// that hold no reference: a slice of an array retained and released it for every request, and threads that
/// shared one ring wrote that one reference count over and over.
public final class Ring: @unchecked Sendable {  // (immutable once made)
    public let nodeCount: Int
    public let vnodes: Int
    public let partitionCount: Int
    /// owner of each partition.
    public let owners: [UInt16]
    /// `partitionCount × nodeCount`: for each partition, all nodes in clockwise order of first appearance.
    @usableFromInline let preference: UnsafeMutableBufferPointer<UInt16>

    /// - Parameters:
    ///   - nodes: physical nodes (1…65535).
    ///   - vnodes: partitions each node claims.
    ///   - spacing: no node appears twice within this many consecutive partitions (capped at `nodes`).
    ///   - seed: the claim shuffle's seed.
    public init(nodes: Int, vnodes: Int = 64, spacing: Int = 4, seed: UInt64 = 1) {
        precondition(nodes >= 1 && nodes < 65536 && vnodes >= 1)
        nodeCount = nodes
        self.vnodes = vnodes
        partitionCount = nodes * vnodes
        owners = Ring.claim(nodes: nodes, vnodes: vnodes, spacing: min(spacing, nodes), seed: seed)
        var table = [UInt16](repeating: 0, count: partitionCount * nodes)
        var seen = [Int](repeating: -1, count: nodes)
        for p in 0..<partitionCount {
            var filled = 0
            var q = p
            while filled < nodes {
                let owner = Int(owners[q])
                if seen[owner] != p {
                    seen[owner] = p
                    table[p * nodes + filled] = UInt16(owner)
                    filled += 1
                }
                q = q + 1 == partitionCount ? 0 : q + 1
            }
        }
        preference = .allocate(capacity: table.count)
        _ = preference.initialize(from: table)
    }

    deinit { preference.deallocate() }

    /// Each node claims `vnodes` partitions; a greedy seeded walk picks, at each partition, among the nodes with
    /// the most claims left that are not within `spacing` of the same node (wrapping around). Falls back to
    /// round-robin, which always satisfies the spacing, if the walk gets stuck.
    static func claim(nodes: Int, vnodes: Int, spacing: Int, seed: UInt64) -> [UInt16] {
        let total = nodes * vnodes
        var rng = Xoshiro.derive(seed, 0x52494E47)  // "RING"
        attempt: for _ in 0..<32 {
            var left = [Int](repeating: vnodes, count: nodes)
            var seq: [UInt16] = []
            seq.reserveCapacity(total)
            for p in 0..<total {
                var best: [Int] = []
                var bestLeft = 0
                for node in 0..<nodes where left[node] > 0 {
                    var clash = false
                    for back in 1..<max(1, spacing) where p - back >= 0 && Int(seq[p - back]) == node {
                        clash = true
                    }
                    // Near the end, also keep clear of the first partitions (the ring wraps).
                    for ahead in 0..<max(0, spacing - 1) where total - p + ahead < spacing && ahead < seq.count
                        && Int(seq[ahead]) == node
                    {
                        clash = true
                    }
                    if clash { continue }
                    if left[node] > bestLeft {
                        best = [node]
                        bestLeft = left[node]
                    } else if left[node] == bestLeft {
                        best.append(node)
                    }
                }
                if best.isEmpty { continue attempt }
                let pick = best[rng.next(below: best.count)]
                left[pick] -= 1
                seq.append(UInt16(pick))
            }
            return seq
        }
        return (0..<total).map { UInt16($0 % nodes) }
    }

    /// The partition a hash falls in.
    @inlinable
    public func partition(of hash: UInt64) -> Int {
        Int(truncatingIfNeeded: hash.multipliedFullWidth(by: UInt64(partitionCount)).high)
    }

    /// The preference list of `key`: n primaries, then the fallbacks.
    @inlinable
    public func preferenceList(for key: Key) -> PreferenceList {
        PreferenceList(ring: self, base: partition(of: key.hash) * nodeCount)
    }

    /// The first `n` nodes of `key`'s preference list: its replicas. A view of the ring's memory: valid while the
    /// ring lives (a caller that holds the ring only in a local it no longer uses after this call keeps it alive with
    /// `withExtendedLifetime`).
    @inlinable
    public func replicas(of key: Key, n: Int) -> NodeList {
        NodeList(start: preference.baseAddress! + partition(of: key.hash) * nodeCount, count: n)
    }

    /// Whether `node` is among the first `n` nodes of `key`'s preference list.
    @inlinable
    public func isReplica(_ node: Int, of key: Key, n: Int) -> Bool {
        replicas(of: key, n: n).contains(UInt16(truncatingIfNeeded: node))
    }

    /// The primary (first) node of `key`.
    @inlinable
    public func primary(of key: Key) -> Int { Int(preference[partition(of: key.hash) * nodeCount]) }
}

/// All nodes in the order a key prefers them: the first n are its replicas, the rest fallbacks.
public struct PreferenceList: Sendable, RandomAccessCollection {
    @usableFromInline let ring: Ring
    @usableFromInline let base: Int

    @inlinable
    init(ring: Ring, base: Int) {
        self.ring = ring
        self.base = base
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { ring.nodeCount }
    @inlinable
    public subscript(i: Int) -> Int { Int(ring.preference[base + i]) }

    /// The first `n` nodes: the key's replicas (valid while the ring lives).
    @inlinable
    public func replicas(_ n: Int) -> NodeList { NodeList(start: ring.preference.baseAddress! + base, count: n) }

    /// Whether `node` is among the first `n`.
    @inlinable
    public func contains(_ node: Int, within n: Int) -> Bool { replicas(n).contains(UInt16(truncatingIfNeeded: node)) }
}

/// Nodes in order, by number: a view of memory someone else owns (a ring's preference lists, or a request's own
/// list), valid while that owner lives. Copying one touches no reference count.
public typealias NodeList = UnsafeBufferPointer<UInt16>
