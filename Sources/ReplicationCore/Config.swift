/// Who coordinates a request.
public enum Routing: String, Sendable, CaseIterable {
    /// A node coordinates (its own replica is local).
    case server
    /// The client library coordinates and every replica is remote (Voldemort-style; the PBS model).
    case client
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
        return nil
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
    /// Replicas sent the reconciled state because they answered with something older or nothing.
    public var readRepairs = 0
    /// Replica writes merged / replica reads served.
    public var writesApplied = 0
    public var readsServed = 0
    /// Purges sent by coordinators, tombstones removed by replicas.
    public var purgesSent = 0
    public var tombstonesPurged = 0
    /// Bad input ignored: an unknown or non-replica sender, a misdirected write, a message of the wrong kind.
    public var ignored = 0
    /// A second reply from the same replica to one request.
    public var duplicateReplies = 0
    /// A reply for a request that has already finished.
    public var lateReplies = 0

    public init() {}

    public mutating func add(_ o: CoreCounters) {
        coordinated += o.coordinated
        forwarded += o.forwarded
        ok += o.ok
        failed += o.failed
        readRepairs += o.readRepairs
        writesApplied += o.writesApplied
        readsServed += o.readsServed
        purgesSent += o.purgesSent
        tombstonesPurged += o.tombstonesPurged
        ignored += o.ignored
        duplicateReplies += o.duplicateReplies
        lateReplies += o.lateReplies
    }
}
