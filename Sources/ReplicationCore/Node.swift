import BufferPool

/// One node of the cluster as a state machine: a message (or a timer) and the current time in, messages and timer
/// requests out. It coordinates client requests (``Coordinator``) and serves as a replica (``VersionedStore``).
/// Nothing here reads a clock, sleeps, starts a thread or touches a socket.
public final class Node {
    public let id: Int
    public let endpoint: Endpoint
    public let config: CoreConfig
    public let ring: Ring
    public let store: VersionedStore
    public let coordinator: Coordinator
    /// Replica-side counters (the coordinator keeps its own; ``counters`` sums both).
    @exclusivity(unchecked) var replicaCounters = CoreCounters()
    /// Incremented each time the node comes back empty; part of every actor it writes as.
    public private(set) var incarnation: UInt32 = 0

    public init(id: Int, config: CoreConfig, ring: Ring, pool: BufferPool = .shared) {
        self.id = id
        self.endpoint = .node(id)
        self.config = config
        self.ring = ring
        self.store = VersionedStore(mode: config.versioning, pool: pool)
        self.coordinator = Coordinator(endpoint: .node(id), config: config, ring: ring, pool: pool)
    }

    /// Everything this node counted, as coordinator and as replica.
    public var counters: CoreCounters {
        var c = coordinator.counters
        c.add(replicaCounters)
        return c
    }

    /// Handles one message.
    public func handle(_ envelope: Envelope, now: UInt64, out: inout Outbox) {
        let from = envelope.from
        if !from.isClient && from.index >= config.nodes {
            replicaCounters.ignored += 1
            envelope.message.release(to: store.pool)
            return
        }
        switch envelope.message {
        case .request(let request):
            coordinator.start(request, from: from, now: now, local: store, out: &out)
        case .write(let write):
            guard ring.isReplica(id, of: Key(write.key), n: config.n) else {
                replicaCounters.ignored += 1
                Siblings.release(write.versions, pool: store.pool)
                return
            }
            // Only a delete can leave the state tombstones only: remember its dots before the merge takes them.
            let written = write.versions.contains(where: \.isTombstone) ? write.versions.map(\.dot) : nil
            store.apply(key: write.key, write.versions)
            replicaCounters.writesApplied += 1
            if write.request != 0 {
                var tombstoneOnly = false
                if let written {
                    let state = store.state(of: write.key)
                    tombstoneOnly = Siblings.deleted(state) && state.allSatisfy { written.contains($0.dot) }
                }
                out.send(
                    .writeAck(ReplicaAck(request: write.request, key: write.key, tombstoneOnly: tombstoneOnly)),
                    from: endpoint, to: from)
            }
        case .read(let read):
            replicaCounters.readsServed += 1
            out.send(
                .readResponse(ReplicaReadResponse(
                    request: read.request, key: read.key,
                    versions: Siblings.copy(store.state(of: read.key), pool: store.pool))),
                from: endpoint, to: from)
        case .writeAck(let ack):
            coordinator.writeAcked(ack, from: from, now: now, out: &out)
        case .readResponse(let response):
            coordinator.readAnswered(response, from: from, now: now, out: &out)
        case .purge(let purge):
            if store.purge(key: purge.key, dots: purge.dots) { replicaCounters.tombstonesPurged += 1 }
        case .reply:
            replicaCounters.ignored += 1
            envelope.message.release(to: store.pool)
        }
    }

    /// A timer this node asked for has come due.
    public func timer(_ token: UInt64, now: UInt64, out: inout Outbox) {
        coordinator.timerFired(token, now: now, local: store, out: &out)
    }
}
