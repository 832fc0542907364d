import BufferPool

/// One node of the cluster as a state machine: a message (or a timer) and the current time in, messages and timer
/// requests out. It coordinates client requests (``Coordinator``), serves as a replica (``VersionedStore``), keeps
/// hints for suspected replicas as a fallback (``HintStore``) and hands them over, and compares Merkle trees with the
/// other replicas of its ranges (anti-entropy). Nothing here reads a clock, sleeps, starts a thread or touches a
/// socket.
public final class Node {
    public let id: Int
    public let endpoint: Endpoint
    public let config: CoreConfig
    public let ring: Ring
    public let store: VersionedStore
    public let hints: HintStore
    public let coordinator: Coordinator
    /// Replica-side counters (the coordinator keeps its own; ``counters`` sums both).
    @exclusivity(unchecked) var replicaCounters = CoreCounters()
    /// Incremented each time the node comes back empty; part of every actor it writes as.
    public private(set) var incarnation: UInt32 = 0

    /// Hints handed over and not yet acknowledged: request id → (owner, key, the dots sent, when).
    struct Handoff {
        var owner: Int
        var key: UInt64
        var dots: [Dot]
        var sentAt: UInt64
    }
    @exclusivity(unchecked) var handoffs: [UInt64: Handoff] = [:]
    @exclusivity(unchecked) var nextHandoff: UInt64 = 1
    /// Handoff request ids carry this bit, so their acks are told apart from a coordinator's.
    static let handoffBit: UInt64 = 1 << 61
    static let handoffKind: UInt64 = 2
    static let antiEntropyKind: UInt64 = 3
    /// Bumped by ``boot(now:out:)``: periodic timers of an earlier life are ignored.
    @exclusivity(unchecked) var generation: UInt64 = 0
    /// Anti-entropy partners in turn.
    @exclusivity(unchecked) var nextPeer = 0

    public init(id: Int, config: CoreConfig, ring: Ring, pool: BufferPool = .shared) {
        self.id = id
        self.endpoint = .node(id)
        self.config = config
        self.ring = ring
        self.store = VersionedStore(mode: config.versioning, pool: pool)
        self.hints = HintStore(mode: config.versioning, pool: pool, perOwner: config.hintLimitPerOwner,
                               total: config.hintLimitTotal)
        self.coordinator = Coordinator(endpoint: .node(id), config: config, ring: ring, pool: pool)
        if config.antiEntropy { store.merkle = MerkleForest(ring: ring, node: id, n: config.n, depth: config.merkleDepth) }
    }

    /// Everything this node counted, as coordinator and as replica.
    public var counters: CoreCounters {
        var c = coordinator.counters
        c.add(replicaCounters)
        c.lateVersionsDropped += store.lateVersionsDropped
        return c
    }

    // MARK: - Life cycle

    /// Starts the node's periodic work (hint handoff, anti-entropy). Call when it starts and each time it comes back.
    public func boot(now: UInt64, out: inout Outbox) {
        generation += 1
        if config.hintedHandoff { out.setTimer(at: now &+ config.handoffInterval, token: token(Node.handoffKind)) }
        if config.antiEntropy {
            // Spread the nodes' exchanges over the interval.
            let offset = config.aeInterval / UInt64(max(1, config.nodes)) * UInt64(id + 1)
            out.setTimer(at: now &+ offset, token: token(Node.antiEntropyKind))
        }
    }

    /// The node went down: requests it coordinated are abandoned. `wipe`: it loses its data and hints and will
    /// write under a new incarnation, so it never reuses a version counter (Riak's kv679 lesson).
    public func crash(wipe: Bool) {
        coordinator.abandonAll()
        handoffs.removeAll()
        generation += 1
        if wipe {
            store.wipe()
            hints.wipe()
            incarnation += 1
            coordinator.incarnation = incarnation
        }
    }

    /// Whether every hint handed over has been answered.
    public var handoffsEmpty: Bool { handoffs.isEmpty }

    @inline(__always)
    func token(_ kind: UInt64) -> UInt64 { Coordinator.tickBit | (generation & 0xFF_FFFF) << 8 | kind }

    // MARK: - Loading without messages

    /// A record of the load phase, written as a fault-free blind insert coordinated by this node (one of the key's
    /// replicas) leaves it here: a dot of this node's replica actor and its timestamp, merged by the same store
    /// call a coordinated write makes. Returns the key's state (not copied: the other replicas merge copies of it
    /// with ``VersionedStore/apply(key:_:)``, as a replica write does) and the context the put's reply gives its
    /// client. The simulator loads its records this way (``VirtualCluster/preload(key:value:)``).
    public func preload(key: UInt64, value: PoolBuffer?, now: UInt64) -> (state: [Version], reply: CausalContext) {
        guard let (state, dot) = store.coordinateWrite(
            key: key, actor: .replica(node: id, incarnation: incarnation), context: .empty, value: value,
            tombstone: false, now: now)
        else { preconditionFailure("a write with no sibling limit is never refused") }
        return (state, coordinator.replyContext(sent: .empty, dot: dot))
    }

    // MARK: - Messages

    /// Handles one message.
    public func handle(_ envelope: Envelope, now: UInt64, out: inout Outbox) {
        let from = envelope.from
        if !from.isClient {
            if from.index >= config.nodes {
                replicaCounters.ignored += 1
                envelope.message.release(to: store.pool)
                return
            }
            coordinator.detector.heard(from: from.index)
        }
        switch envelope.message {
        case .request(let request):
            coordinator.start(request, from: from, now: now, local: store, out: &out)
        case .write(let write):
            applyWrite(write, from: from, out: &out)
        case .read(let read):
            replicaCounters.readsServed += 1
            // Asked as a fallback (only a node holding hints can be one with something to say): its hints.
            let response: ReplicaReadResponse
            if hints.count == 0 || ring.isReplica(id, of: Key(read.key), n: config.n) {
                let (state, digest) = store.stateAndDigest(of: read.key)
                if read.digest != 0 && digest == read.digest {
                    // What the coordinator holds itself: say so instead of sending the versions and their values.
                    replicaCounters.readsSame += 1
                    response = ReplicaReadResponse(request: read.request, key: read.key, versions: [], same: true)
                } else {
                    response = ReplicaReadResponse(request: read.request, key: read.key,
                                                   versions: Siblings.copy(state, pool: store.pool))
                }
            } else {
                response = ReplicaReadResponse(request: read.request, key: read.key, versions: hints.copyState(of: read.key))
            }
            out.send(.readResponse(response), from: endpoint, to: from)
        case .writeAck(let ack):
            if ack.request & Node.handoffBit != 0 {
                handoffAcked(ack)
            } else {
                coordinator.writeAcked(ack, from: from, now: now, out: &out)
            }
        case .readResponse(let response):
            coordinator.readAnswered(response, from: from, now: now, out: &out)
        case .purge(let purge):
            if store.purge(key: purge.key, dots: purge.dots) { replicaCounters.tombstonesPurged += 1 }
        case .ping(let nonce):
            out.send(.pong(nonce), from: endpoint, to: from)
        case .pong:
            break  // heard above
        case .antiEntropy(let message):
            guard !from.isClient else {
                replicaCounters.ignored += 1
                return
            }
            antiEntropy(message, from: from.index, out: &out)
        case .reply:
            replicaCounters.ignored += 1
            envelope.message.release(to: store.pool)
        }
    }

    func applyWrite(_ write: ReplicaWrite, from: Endpoint, out: inout Outbox) {
        let isReplica = ring.isReplica(id, of: Key(write.key), n: config.n)
        if !isReplica && write.hintFor >= 0 && Int(write.hintFor) < config.nodes && Int(write.hintFor) != id {
            // A fallback: keep it apart as a hint for its owner. A hint past the bounds is dropped, not acked.
            guard hints.store(owner: Int(write.hintFor), key: write.key, write.versions) else {
                replicaCounters.hintsDropped += 1
                return
            }
            replicaCounters.hintsStored += 1
            if write.request != 0 {
                out.send(.writeAck(ReplicaAck(request: write.request, key: write.key)), from: endpoint, to: from)
            }
            return
        }
        guard isReplica else {
            replicaCounters.ignored += 1
            Siblings.release(write.versions, pool: store.pool)
            return
        }
        // Only a delete can leave the state tombstones only: remember its dots before the merge takes them.
        let written = write.versions.contains(where: \.isTombstone) ? write.versions.map(\.dot) : nil
        // Riak's max_siblings: a client's write past it is refused. (Repair and handoff still merge: they only pass
        // on versions some replica already took.)
        let limit = write.request != 0 && write.origin == .client ? config.maxSiblings : 0
        guard let changed = store.apply(key: write.key, write.versions, limit: limit) else {
            replicaCounters.writesRejected += 1
            out.send(.writeAck(ReplicaAck(request: write.request, key: write.key, rejected: true)), from: endpoint, to: from)
            return
        }
        replicaCounters.writesApplied += 1
        if changed && write.origin == .antiEntropy { replicaCounters.aeKeysRepaired += 1 }
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
    }

    // MARK: - Timers

    /// A timer this node asked for has come due.
    public func timer(_ token: UInt64, now: UInt64, out: inout Outbox) {
        let kind = token & 0xFF
        if token & Coordinator.tickBit != 0 && (kind == Node.handoffKind || kind == Node.antiEntropyKind) {
            guard token >> 8 & 0xFF_FFFF == generation & 0xFF_FFFF else { return }  // from an earlier life
            if kind == Node.handoffKind {
                handOff(now: now, out: &out)
                out.setTimer(at: now &+ config.handoffInterval, token: self.token(Node.handoffKind))
            } else {
                if let peer = nextExchangePeer() { beginExchange(with: peer, out: &out) }
                out.setTimer(at: now &+ config.aeInterval, token: self.token(Node.antiEntropyKind))
            }
            return
        }
        coordinator.timerFired(token, now: now, local: store, out: &out)
    }

    // MARK: - Hinted handoff

    /// One handoff round: every owner with hints that is not suspected gets up to `handoffBatch` of them (fewer if
    /// some are still unacknowledged); a suspected owner is probed instead. Unacknowledged handoffs older than the
    /// request timeout are forgotten and sent again in a later round.
    public func handOff(now: UInt64, out: inout Outbox, batch: Int? = nil) {
        if !handoffs.isEmpty {
            for (id, h) in handoffs where now &- h.sentAt > config.timeout { handoffs[id] = nil }
        }
        guard hints.count > 0 else { return }
        for owner in hints.owners {
            if coordinator.detector.isSuspected(owner) {
                coordinator.ensureProbing(now: now, out: &out)  // the probe tick pings it
                continue
            }
            let inFlight = Set(handoffs.values.lazy.filter { $0.owner == owner }.map(\.key))
            let room = (batch ?? config.handoffBatch) - inFlight.count
            for (key, versions) in hints.batch(for: owner, limit: room, skip: { inFlight.contains($0) }) {
                let id = Node.handoffBit | nextHandoff
                nextHandoff += 1
                handoffs[id] = Handoff(owner: owner, key: key, dots: versions.map(\.dot), sentAt: now)
                out.send(.write(ReplicaWrite(request: id, key: key, versions: versions, origin: .handoff)),
                         from: endpoint, to: .node(owner))
                coordinator.detector.sent(to: owner, now: now)
            }
            coordinator.ensureProbing(now: now, out: &out)
        }
    }

    func handoffAcked(_ ack: ReplicaAck) {
        guard let h = handoffs.removeValue(forKey: ack.request), h.key == ack.key else {
            replicaCounters.lateReplies += 1
            return
        }
        if hints.delivered(owner: h.owner, key: h.key, dots: h.dots) { replicaCounters.hintsDelivered += 1 }
    }

    // MARK: - Anti-entropy

    /// The next replica of a shared range to compare with (round robin, skipping suspected peers).
    func nextExchangePeer() -> Int? {
        guard let merkle = store.merkle else { return nil }
        for _ in 0..<config.nodes {
            let peer = nextPeer % config.nodes
            nextPeer += 1
            if peer != id && !merkle.shared[peer].isEmpty && !coordinator.detector.isSuspected(peer) { return peer }
        }
        return nil
    }

    /// Starts an exchange: sends `peer` the roots of every range both replicate.
    public func beginExchange(with peer: Int, out: inout Outbox) {
        guard let merkle = store.merkle, peer != id, peer < config.nodes else { return }
        let roots = merkle.roots(sharedWith: peer)
        if roots.isEmpty { return }
        replicaCounters.aeExchanges += 1
        sendTree(roots, to: peer, out: &out)
    }

    func sendTree(_ nodes: [TreeNode], to peer: Int, out: inout Outbox) {
        replicaCounters.aeTreeNodesSent += nodes.count
        replicaCounters.aeBytesSent += nodes.count * 16
        out.send(.antiEntropy(.tree(nodes)), from: endpoint, to: .node(peer))
    }

    func antiEntropy(_ message: AntiEntropyMessage, from peer: Int, out: inout Outbox) {
        guard let merkle = store.merkle else { return }
        switch message {
        case .tree(let theirs):
            // Descend where we differ: children of differing inner nodes go back; differing leaves get our keys.
            var children: [TreeNode] = []
            var leaves: [TreeNode] = []
            for t in theirs {
                let p = Int(t.partition), i = Int(t.index)
                guard merkle.shares(p, with: peer), let mine = merkle.hash(partition: p, index: i), mine != t.hash
                else { continue }
                if merkle.isLeaf(i) {
                    leaves.append(TreeNode(partition: t.partition, index: t.index, hash: mine))
                } else {
                    for c in [2 * i + 1, 2 * i + 2] {
                        children.append(TreeNode(partition: t.partition, index: UInt32(c),
                                                 hash: merkle.hash(partition: p, index: c)!))
                    }
                }
            }
            if !children.isEmpty { sendTree(children, to: peer, out: &out) }
            if !leaves.isEmpty {
                let keys = keysUnder(leaves)
                replicaCounters.aeTreeNodesSent += leaves.count
                replicaCounters.aeKeysSent += keys.count
                replicaCounters.aeBytesSent += leaves.count * 16 + keys.count * 16
                out.send(.antiEntropy(.keys(leaves: leaves, keys: keys)), from: endpoint, to: .node(peer))
            }
        case .keys(let leaves, let theirs):
            // Both ways: our versions of keys that differ go to the peer; we pull the ones it has.
            let mine = Dictionary(keysUnder(leaves.filter { merkle.shares(Int($0.partition), with: peer) }),
                                  uniquingKeysWith: { a, _ in a })
            var pull: [UInt64] = []
            var seen = Set<UInt64>()
            for (key, digest) in theirs {
                seen.insert(key)
                guard merkle.shares(ring.partition(of: Key(key).hash), with: peer) else { continue }
                let own = mine[key] ?? 0
                if own == digest { continue }
                if own != 0 { sendRepair(key, to: peer, out: &out) }
                if digest != 0 { pull.append(key) }
            }
            for key in mine.keys.sorted() where !seen.contains(key) { sendRepair(key, to: peer, out: &out) }
            if !pull.isEmpty {
                replicaCounters.aeKeysSent += pull.count
                replicaCounters.aeBytesSent += pull.count * 8
                out.send(.antiEntropy(.pull(pull)), from: endpoint, to: .node(peer))
            }
        case .pull(let keys):
            for key in keys where merkle.shares(ring.partition(of: Key(key).hash), with: peer) {
                sendRepair(key, to: peer, out: &out)
            }
        }
    }

    /// Our keys (with digests) under these leaves.
    func keysUnder(_ leaves: [TreeNode]) -> [(key: UInt64, digest: UInt64)] {
        guard let merkle = store.merkle, !leaves.isEmpty else { return [] }
        let wanted = Set(leaves.map { UInt64($0.partition) << 32 | UInt64(Int($0.index) - (merkle.leafCount - 1)) })
        var out: [(UInt64, UInt64)] = []
        store.forEachDigest { key, digest in
            let h = Key(key).hash
            if wanted.contains(UInt64(ring.partition(of: h)) << 32 | UInt64(merkle.leaf(of: h))) { out.append((key, digest)) }
        }
        return out.sorted { $0.0 < $1.0 }  // an order of its own, not the dictionary's (the simulator replays exactly)
    }

    func sendRepair(_ key: UInt64, to peer: Int, out: inout Outbox) {
        let state = store.state(of: key)
        if state.isEmpty { return }
        replicaCounters.aeKeysSent += 1
        replicaCounters.aeBytesSent += 16 + state.reduce(0) { $0 + 32 + ($1.value?.count ?? 0) }
        out.send(.write(ReplicaWrite(request: 0, key: key, versions: Siblings.copy(state, pool: store.pool),
                                     origin: .antiEntropy)),
                 from: endpoint, to: .node(peer))
    }
}
