/// Who coordinates a request.
public enum Routing: String, Sendable, CaseIterable {
    /// A node coordinates (its own replica is local).
    case server
    /// The client library coordinates and every replica is remote (Voldemort-style; the PBS model).
    case client
}

/// Whether fallback nodes count toward a quorum.
public enum QuorumMode: String, Sendable, CaseIterable {
    /// A write (or read) goes to the first n healthy nodes of the preference list; fallbacks count toward w and r.
    case sloppy
    /// Only the key's n replicas count; a fallback still takes a hinted copy of a write for a suspected replica.
    case strict
}

/// The replication parameters every node and client-side coordinator shares.
public struct CoreConfig: Sendable, Equatable {
    /// Nodes in the cluster (M ≥ n).
    public var nodes: Int = 5
    /// Replicas per key.
    public var n: Int = 3
    /// Write quorum.
    public var w: Int = 2
    /// Read quorum.
    public var r: Int = 2
    /// Virtual nodes (partitions) per node.
    public var vnodes: Int = 64
    public var versioning: Versioning = .vv
    public var readRepair: Bool = true
    public var routing: Routing = .server
    /// Per-request timeout at the coordinator, ns.
    public var timeout: UInt64 = 100_000_000
    /// How long after every replica acknowledged a tombstone it is purged, ns (late messages of older writes
    /// must not find the key gone; Riak's delete_mode).
    public var tombstoneGrace: UInt64 = 1_000_000_000
    /// Seed of the ring's claim shuffle.
    public var seed: UInt64 = 1
    public var quorum: QuorumMode = .sloppy
    /// Fallbacks keep hints for suspected replicas and hand them over when they return. Off: no fallback writes.
    public var hintedHandoff = true
    /// Hinted keys a node keeps per owner and in total; hints past either bound are dropped (and counted).
    public var hintLimitPerOwner = 50_000
    public var hintLimitTotal = 200_000
    /// Keys a node hands to one owner per handoff round (every `handoffInterval`), so a returning node is not flooded.
    public var handoffBatch = 256
    public var handoffInterval: UInt64 = 10_000_000
    /// Merkle-tree anti-entropy between replicas, one exchange per node every `aeInterval`.
    public var antiEntropy = true
    public var aeInterval: UInt64 = 1_000_000_000
    /// Levels below each partition's Merkle root: 2^depth leaves per partition.
    public var merkleDepth = 8
    /// Failure detection: a peer that has left a message unanswered this long, with nothing heard from it since,
    /// is suspected; suspected peers are pinged every `probeInterval` until they answer.
    public var suspicionTimeout: UInt64 = 25_000_000
    public var probeInterval: UInt64 = 10_000_000
    /// `vv`: a replica refuses a client's write that would leave the key with more versions than this, and the
    /// write fails once too few replicas took it (Riak's `max_siblings`, whose default this is). Without a limit,
    /// writes whose clients never learn a context (timeouts) pile up siblings, each write carrying and merging
    /// them all. 0: no limit.
    public var maxSiblings = 100

    public init() {}

    /// Why this configuration cannot run, or nil.
    public var problem: String? {
        if nodes < 1 || nodes > 4096 { return "--nodes must be between 1 and 4096 (got \(nodes))" }
        if n < 1 || n > 64 { return "--n must be between 1 and 64 (got \(n))" }
        if n > nodes { return "--n \(n) is more than --nodes \(nodes)" }
        if w < 1 || w > n { return "--w must be between 1 and n=\(n) (got \(w))" }
        if r < 1 || r > n { return "--r must be between 1 and n=\(n) (got \(r))" }
        if vnodes < 1 || vnodes > 4096 { return "--vnodes must be between 1 and 4096 (got \(vnodes))" }
        if timeout == 0 { return "--timeout must be positive" }
        if aeInterval == 0 { return "--ae-interval must be positive" }
        if maxSiblings < 0 { return "--max-siblings must be at least 0 (got \(maxSiblings))" }
        if merkleDepth < 0 || merkleDepth > 16 { return "merkle depth must be between 0 and 16 (got \(merkleDepth))" }
        return nil
    }

    /// Sizes anti-entropy's trees for about `keys` records: about one a leaf, at most the current depth
    /// (``MerkleForest/depth(keys:partitions:limit:)``; the ring has nodes × vnodes partitions).
    public mutating func sizeMerkleTrees(forKeys keys: Int) {
        merkleDepth = MerkleForest.depth(keys: keys, partitions: nodes * vnodes, limit: merkleDepth)
    }

    /// The ring every party of this configuration uses.
    public func makeRing() -> Ring { Ring(nodes: nodes, vnodes: vnodes, spacing: max(n, 4), seed: seed) }
}

/// What a node or coordinator counted. Plain integers: each instance belongs to one thread; runtimes sum them.
public struct CoreCounters: Sendable, Equatable, Codable {
    /// Client requests coordinated.
    public var coordinated = 0
    /// Writes a node that is not a replica of the key handed to the key's first replica.
    public var forwarded = 0
    /// Of those, answered ok / failed.
    public var ok = 0
    public var failed = 0
    /// Of the failed, writes too few replicas took: their key was at ``CoreConfig/maxSiblings``.
    public var rejected = 0
    /// Replicas sent the reconciled state because they answered with something older or nothing.
    public var readRepairs = 0
    /// Replica writes merged / replica reads served.
    public var writesApplied = 0
    /// Clients' writes a replica refused: the key would have held more than ``CoreConfig/maxSiblings`` versions.
    public var writesRejected = 0
    public var readsServed = 0
    /// Of the reads served, those answered `same`: the replica's state had the coordinator's digest, and no
    /// versions were sent.
    public var readsSame = 0
    /// Purges sent by coordinators, tombstones removed by replicas.
    public var purgesSent = 0
    public var tombstonesPurged = 0
    /// Versions that reached a replica after their key's tombstone, which had superseded them, was purged there:
    /// dropped, not resurrected (``VersionedStore``).
    public var lateVersionsDropped = 0
    /// Bad input ignored: an unknown or non-replica sender, a misdirected write, a message of the wrong kind.
    public var ignored = 0
    /// A second reply from the same replica to one request.
    public var duplicateReplies = 0
    /// A reply for a request that has already finished.
    public var lateReplies = 0
    /// Sloppy quorum: writes sent to a fallback with a hint; hints kept, handed over (acknowledged by their owner),
    /// dropped past a bound.
    public var fallbackWrites = 0
    public var hintsStored = 0
    public var hintsDelivered = 0
    public var hintsDropped = 0
    /// Failure detection: peers newly suspected, pings sent.
    public var suspicions = 0
    public var pings = 0
    /// Anti-entropy: exchanges begun, tree nodes and keys sent, keys whose state a repair changed, bytes sent.
    public var aeExchanges = 0
    public var aeTreeNodesSent = 0
    public var aeKeysSent = 0
    public var aeKeysRepaired = 0
    public var aeBytesSent = 0

    public init() {}

    public mutating func add(_ o: CoreCounters) {
        coordinated += o.coordinated
        forwarded += o.forwarded
        ok += o.ok
        failed += o.failed
        rejected += o.rejected
        readRepairs += o.readRepairs
        writesApplied += o.writesApplied
        writesRejected += o.writesRejected
        readsServed += o.readsServed
        readsSame += o.readsSame
        purgesSent += o.purgesSent
        tombstonesPurged += o.tombstonesPurged
        lateVersionsDropped += o.lateVersionsDropped
        ignored += o.ignored
        duplicateReplies += o.duplicateReplies
        lateReplies += o.lateReplies
        fallbackWrites += o.fallbackWrites
        hintsStored += o.hintsStored
        hintsDelivered += o.hintsDelivered
        hintsDropped += o.hintsDropped
        suspicions += o.suspicions
        pings += o.pings
        aeExchanges += o.aeExchanges
        aeTreeNodesSent += o.aeTreeNodesSent
        aeKeysSent += o.aeKeysSent
        aeKeysRepaired += o.aeKeysRepaired
        aeBytesSent += o.aeBytesSent
    }
}
