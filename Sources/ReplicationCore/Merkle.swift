/// One Merkle tree per ring partition a node replicates, kept up to date on every change of the store.
///
/// A key's leaf is the low `depth` bits of its hash (the partition comes from the high bits). A leaf's hash is the
/// XOR of its keys' digests, and an inner node's the XOR of its children's, so a change of one key is applied by
/// XOR-ing (old digest ⊕ new digest) into its leaf: one word, no rehashing. Inner nodes are brought up to date
/// when a tree is next read (an exchange, every `--ae-interval`): 2^depth − 1 XORs then, instead of depth more
/// words — in scattered cache lines — on every write.
/// A key's digest depends only on the key and the set of its versions' dots (and tombstone flags), so two replicas
/// holding the same versions have the same trees whatever order the writes came in.
public final class MerkleForest {
    public let ring: Ring
    public let node: Int
    public let depth: Int
    public let n: Int
    public let leafCount: Int
    /// Nodes per tree: 2^(depth+1) − 1, heap ordered (root 0, children of i at 2i+1 and 2i+2).
    public let treeSize: Int
    /// Per partition: its tree's offset in `hashes`, or −1 if this node does not replicate it.
    let slot: [Int32]
    /// The partitions this node replicates, and for each peer the partitions both replicate.
    public let partitions: [Int]
    public let shared: [[Int]]
    @exclusivity(unchecked) var hashes: [UInt64]
    /// Per tree (in `partitions` order): a leaf changed since its inner nodes were computed.
    @exclusivity(unchecked) var stale: [Bool]

    public init(ring: Ring, node: Int, n: Int, depth: Int) {
        self.ring = ring
        self.node = node
        self.depth = depth
        self.n = n
        leafCount = 1 << depth
        treeSize = 2 * leafCount - 1
        var slot = [Int32](repeating: -1, count: ring.partitionCount)
        var mine: [Int] = []
        var shared = [[Int]](repeating: [], count: ring.nodeCount)
        for p in 0..<ring.partitionCount {
            let replicas = ring.preferenceList(partition: p).replicas(n)
            guard replicas.contains(UInt16(node)) else { continue }
            slot[p] = Int32(mine.count * treeSize)
            mine.append(p)
            for r in replicas where Int(r) != node { shared[Int(r)].append(p) }
        }
        self.slot = slot
        partitions = mine
        self.shared = shared
        hashes = Array(repeating: 0, count: mine.count * treeSize)
        stale = Array(repeating: false, count: mine.count)
    }

    /// The depth that gives about one key a leaf: the smallest from 1 whose leaves, over all `partitions`, are at
    /// least `keys`, and at most `limit`. A fixed depth of 8 took 4 KiB a partition whatever its keys: with 50
    /// nodes of 4,096 vnodes each, 2.6 GB of trees for 2,000 keys.
    public static func depth(keys: Int, partitions: Int, limit: Int) -> Int {
        var depth = 1
        while depth < limit && (1 << depth) * partitions < keys { depth += 1 }
        return min(depth, limit)
    }

    /// The digest of one key's state (0 for no state).
    @inlinable
    public static func digest(key: UInt64, _ state: [Version]) -> UInt64 {
        if state.isEmpty { return 0 }
        var h: UInt64 = 0
        for v in state {
            h ^= Hash64.combine(v.dot.actor.raw &+ (v.isTombstone ? 1 : 0), v.dot.counter)
        }
        return Hash64.combine(key, h) | 1
    }

    /// The leaf of a key hash.
    @inline(__always)
    public func leaf(of hash: UInt64) -> Int { Int(truncatingIfNeeded: hash) & (leafCount - 1) }

    /// A key's digest went from `old` to `new`.
    @inline(__always)
    public func update(hash: UInt64, old: UInt64, new: UInt64) {
        let delta = old ^ new
        if delta == 0 { return }
        let base = Int(slot[ring.partition(of: hash)])
        if base < 0 { return }
        hashes[base + leafCount - 1 + leaf(of: hash)] ^= delta
        stale[base / treeSize] = true
    }

    /// Recomputes the inner nodes of the tree at `base` if a leaf changed since.
    @inline(__always)
    func refresh(_ base: Int) {
        let t = base / treeSize
        guard stale[t] else { return }
        stale[t] = false
        hashes.withUnsafeMutableBufferPointer { h in
            for i in stride(from: leafCount - 2, through: 0, by: -1) { h[base + i] = h[base + 2 * i + 1] ^ h[base + 2 * i + 2] }
        }
    }

    /// The hash of tree node `index` of `partition` (nil if this node does not replicate it).
    public func hash(partition: Int, index: Int) -> UInt64? {
        guard partition >= 0, partition < slot.count, index >= 0, index < treeSize else { return nil }
        let base = Int(slot[partition])
        if base < 0 { return nil }
        refresh(base)
        return hashes[base + index]
    }

    /// Whether this node and `peer` both replicate `partition`.
    public func shares(_ partition: Int, with peer: Int) -> Bool {
        replicates(partition) && ring.preferenceList(partition: partition).contains(peer, within: n)
    }

    public func replicates(_ partition: Int) -> Bool { partition >= 0 && partition < slot.count && slot[partition] >= 0 }

    /// Whether `index` is a leaf.
    public func isLeaf(_ index: Int) -> Bool { index >= leafCount - 1 }

    /// Roots of the partitions shared with `peer`.
    public func roots(sharedWith peer: Int) -> [TreeNode] {
        shared[peer].map { p in
            refresh(Int(slot[p]))
            return TreeNode(partition: UInt32(p), index: 0, hash: hashes[Int(slot[p])])
        }
    }

    /// Every tree back to empty (the node was wiped).
    public func reset() {
        for i in hashes.indices { hashes[i] = 0 }
        for t in stale.indices { stale[t] = false }
    }
}

extension Ring {
    /// The preference list of a partition.
    public func preferenceList(partition: Int) -> PreferenceList {
        PreferenceList(ring: self, base: partition * nodeCount)
    }
}
