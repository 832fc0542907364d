import BufferPool
import SyncPrimitives

/// The quorum state machine: runs a client's get, put or delete against the key's n replicas.
///
/// The same logic serves a node (server routing: its own replica is local) and the client library (client
/// routing: every replica is remote). It never reads a clock or sends anything itself: `now` comes in with every
/// call, and what to send and when to be woken goes into the `Outbox`.
///
/// - A put or delete is stored locally if the coordinator is a replica (that counts as one ack) and sent to the
///   other replicas; it succeeds at w acks and fails at the timeout.
/// - A get asks the n replicas and answers after r responses, reconciled; answers that come later are still used
///   for read repair, done when all n answered or at the timeout.
/// - A delete that every replica acknowledged as its whole state is purged after `tombstoneGrace`.
public final class Coordinator {
    public let endpoint: Endpoint
    public let config: CoreConfig
    public let ring: Ring
    public let pool: BufferPool
    @exclusivity(unchecked) public var counters = CoreCounters()
    /// Incarnation of the node (or client) coordinating: part of every actor it writes as.
    public var incarnation: UInt32 = 0

    /// A request in flight. Finished ones are kept for reuse (``recycle(_:)``), their arrays' capacity with them:
    /// one was allocated and freed per operation, and a read's answers array per read.
    final class Pending {
        /// The request's id (``PendingTable`` finds it by it).
        @exclusivity(unchecked) var id: UInt64 = 0
        @exclusivity(unchecked) var op = Operation.get
        @exclusivity(unchecked) var client = Endpoint.node(0)
        @exclusivity(unchecked) var tag: UInt64 = 0
        @exclusivity(unchecked) var key: UInt64 = 0
        /// The nodes asked: the key's replicas (a view of the ring, which outlives every request), or a list of
        /// the request's own in `ownNodes` (suspected replicas' stand-ins; ``own(_:capacity:)``).
        @exclusivity(unchecked) var replicas = NodeList(start: nil, count: 0)
        /// Room for a list of the request's own, as many nodes as the cluster has (a list never names one twice).
        @exclusivity(unchecked) var ownNodes: UnsafeMutableBufferPointer<UInt16>?
        /// For each node asked, the replica it stands in for as a fallback (−1: itself a replica); nil: no fallback.
        @exclusivity(unchecked) var hintFor: [Int32]?
        /// Bit i: node i's answer counts toward the quorum (strict quorum: replicas only).
        @exclusivity(unchecked) var counting: UInt64 = 0
        /// Sloppy quorum with no local store (client routing): a copy of the write, for a stand-in found later.
        @exclusivity(unchecked) var state: [Version]?
        /// Bit i: node i has been given a stand-in.
        @exclusivity(unchecked) var substituted: UInt64 = 0
        @exclusivity(unchecked) var answered: UInt64 = 0  // bit i: node i answered
        @exclusivity(unchecked) var answers = 0
        @exclusivity(unchecked) var quorumAnswers = 0
        @exclusivity(unchecked) var replied = false
        /// get: the responses so far, by replica index (owned here until the request finishes)
        @exclusivity(unchecked) var responses: [(index: Int, versions: [Version])] = []
        /// get: the coordinator's own response (its replica's state), which `same` answers stand for.
        @exclusivity(unchecked) var localVersions: [Version]?
        /// get: bit i: node i answered `same`, and its response is `localVersions` again (released once, there).
        @exclusivity(unchecked) var aliases: UInt64 = 0
        /// put/delete: what the reply carries, and whether every ack said "my state is exactly this tombstone"
        @exclusivity(unchecked) var dot: Dot?
        @exclusivity(unchecked) var context = CausalContext.empty
        @exclusivity(unchecked) var allTombstoneOnly = true

        deinit { ownNodes?.deallocate() }

        /// Sets the request up: a new one, or one finished and kept for reuse (every field is set again; whom it
        /// asks, by ``Coordinator/aim(_:at:replicas:write:)``).
        func start(id: UInt64, op: Operation, client: Endpoint, tag: UInt64, key: UInt64) {
            self.id = id
            self.op = op
            self.client = client
            self.tag = tag
            self.key = key
            state = nil
            substituted = 0
            answered = 0
            answers = 0
            quorumAnswers = 0
            replied = false
            responses.emptyKeepingCapacity()
            localVersions = nil
            aliases = 0
            dot = nil
            if !context.isEmpty { context = CausalContext() }
            allTombstoneOnly = true
        }

        /// Asks `nodes`, a list of the request's own (copied: `nodes` may be a view of the current one).
        func own(_ nodes: [UInt16], capacity: Int) {
            precondition(nodes.count <= capacity, "a node list names a node twice")
            if ownNodes == nil || ownNodes!.count < capacity {
                ownNodes?.deallocate()
                ownNodes = .allocate(capacity: capacity)
            }
            _ = ownNodes!.initialize(from: nodes)
            replicas = NodeList(rebasing: ownNodes![..<nodes.count])
        }

        func index(of node: Endpoint) -> Int? {
            if node.isClient { return nil }
            let n = UInt16(truncatingIfNeeded: node.index)
            for i in replicas.indices where replicas[i] == n { return i }
            return nil
        }

        /// Releases the values of the responses (an alias of the local response once, with it).
        func releaseResponses(_ pool: BufferPool) {
            for r in responses where aliases & (1 << r.index) == 0 { Siblings.release(r.versions, pool: pool) }
            responses.emptyKeepingCapacity()
            localVersions = nil
        }

        func releaseState(_ pool: BufferPool) {
            if let state { Siblings.release(state, pool: pool) }
            state = nil
        }

        /// The hint a message to node i carries.
        @inline(__always)
        func hint(_ i: Int) -> Int32 { hintFor?[i] ?? -1 }
    }

    /// The requests in flight, by id. Ids are handed out in order, so a table indexed by an id's low bits finds a
    /// request with a load and a compare, where a dictionary hashed and probed (~600,000 times per 100,000
    /// operations, 2% of a simulation's instructions). It doubles when a new id's slot is still held by an older
    /// request: its size stays above the span of ids in flight, which a request's timeout bounds.
    struct PendingTable {
        var slots: [Pending?] = Array(repeating: nil, count: 64)
        private(set) var count = 0

        var isEmpty: Bool { count == 0 }

        @inline(__always)
        func slot(_ id: UInt64) -> Int { Int(truncatingIfNeeded: id) & (slots.count - 1) }

        /// The request with this id, if it is in flight.
        @inline(__always)
        subscript(id: UInt64) -> Pending? {
            guard let p = slots[slot(id)], p.id == id else { return nil }
            return p
        }

        mutating func insert(_ p: Pending) {
            while slots[slot(p.id)] != nil { grow() }
            slots[slot(p.id)] = p
            count += 1
        }

        @discardableResult
        mutating func remove(_ id: UInt64) -> Pending? {
            guard let p = self[id] else { return nil }
            slots[slot(id)] = nil
            count -= 1
            return p
        }

        mutating func grow() {
            var size = slots.count * 2
            while true {
                var grown = [Pending?](repeating: nil, count: size)
                var clash = false
                for case let p? in slots {
                    let i = Int(truncatingIfNeeded: p.id) & (size - 1)
                    if grown[i] != nil { clash = true; break }
                    grown[i] = p
                }
                if !clash {
                    slots = grown
                    return
                }
                size *= 2
            }
        }

        /// Every request in flight, oldest first.
        func inOrder() -> [Pending] { slots.compactMap { $0 }.sorted { $0.id < $1.id } }

        mutating func removeAll() {
            slots = Array(repeating: nil, count: slots.count)
            count = 0
        }
    }

    struct PendingPurge {
        var key: UInt64
        var dots: [Dot]
        var replicas: [UInt16]
    }

    @exclusivity(unchecked) var pending = PendingTable()
    /// Finished requests, for reuse.
    @exclusivity(unchecked) var spare: [Pending] = []
    @exclusivity(unchecked) var purges: [UInt64: PendingPurge] = [:]
    @exclusivity(unchecked) var nextRequest: UInt64 = 1
    @exclusivity(unchecked) var looseCounter: UInt64 = 0
    @exclusivity(unchecked) var lastStamp: UInt64 = 0
    static let purgeTokenBit: UInt64 = 1 << 63
    /// Periodic work (probing suspected peers here; handoff and anti-entropy in ``Node``): bit 62, a generation in
    /// bits 8…, the kind in the low byte.
    public static let tickBit: UInt64 = 1 << 62
    static let probeKind: UInt64 = 1
    /// The kind of the one timer that stands for every pending request's timeout (``deadlines``).
    static let timeoutKind: UInt64 = 4
    /// Which peers seem down.
    @exclusivity(unchecked) public var detector: FailureDetector
    @exclusivity(unchecked) var probing = false
    @exclusivity(unchecked) var probeGeneration: UInt64 = 0
    /// Every request's timeout, in start order — deadline order too, as every request gets the same timeout. One
    /// timer stands for them all, set for the earliest request still pending: a timer per
    /// request came due once per operation, nearly always for a request long finished (in the simulator an event
    /// of its own, an eighth of them). Each request still times out at its own deadline exactly.
    @exclusivity(unchecked) var deadlines = FIFO<(at: UInt64, id: UInt64)>()
    @exclusivity(unchecked) var timeoutArmed = false

    public init(endpoint: Endpoint, config: CoreConfig, ring: Ring, pool: BufferPool) {
        self.endpoint = endpoint
        self.config = config
        self.ring = ring
        self.pool = pool
        detector = FailureDetector(nodes: config.nodes, timeout: config.suspicionTimeout)
    }

    /// Requests in flight (waiting for a quorum or for late answers).
    public var inFlight: Int { pending.count }

    // MARK: - Start

    /// Starts a client request. `local` is the coordinator's own store when it is a node.
    public func start(
        _ request: ClientRequest, from client: Endpoint, now: UInt64, local: VersionedStore?, out: inout Outbox
    ) {
        let key = Key(request.key)
        let replicas = ring.replicas(of: key, n: config.n)
        // A node that does not store the key hands a write to the key's first replica it believes up, which
        // coordinates it (as Riak's put FSM does): a replica knows the key's history, so its dots compress into
        // version-vector entries. The reply goes from there straight to the client. With every replica suspected
        // it coordinates the write itself, with exact (loose) dots.
        if request.op != .get, !endpoint.isClient, !replicas.contains(UInt16(endpoint.index)),
            let to = replicas.first(where: { !detector.isSuspected(Int($0)) })
        {
            counters.forwarded += 1
            out.send(.request(request), from: client, to: .node(Int(to)))
            return
        }
        counters.coordinated += 1
        let id = nextRequest
        nextRequest += 1
        let p = spare.popLast() ?? Pending()
        p.start(id: id, op: request.op, client: client, tag: request.tag, key: request.key)
        aim(p, at: key, replicas: replicas, write: request.op != .get)
        // Room for every answer at once: appending grew the array from one slot, a second allocation per read.
        if request.op == .get { p.responses.reserveCapacity(p.replicas.count) }
        var localIndex = local == nil || endpoint.isClient ? nil : p.index(of: endpoint)
        if let i = localIndex, p.hint(i) >= 0 { localIndex = nil }  // a fallback for itself: a message like any other
        deadlines.append((now &+ config.timeout, id))
        if !timeoutArmed { armTimeout(at: now &+ config.timeout, out: &out) }
        pending.insert(p)
        ensureProbing(now: now, out: &out)

        switch request.op {
        case .get:
            // A digest read: replicas that hold what this one holds answer `same` instead of sending it.
            let localRead = localIndex == nil ? nil : local?.stateAndDigest(of: request.key)
            let (localState, digest) = (localRead?.state, localRead?.digest ?? 0)
            var i = 0
            for node in p.replicas {
                if i != localIndex {
                    out.send(.read(ReplicaRead(request: id, key: request.key, digest: digest)),
                             from: endpoint, to: .node(Int(node)))
                    detector.sent(to: Int(node), now: now)
                }
                i += 1
            }
            if let localIndex, let localState {
                let copy = Siblings.copy(localState, pool: pool)
                p.localVersions = copy
                recordResponse(p, id: id, index: localIndex, versions: copy, now: now, out: &out)
            }
        case .put, .delete:
            let tombstone = request.op == .delete
            let context = config.versioning == .vv ? request.context : .empty
            let dot: Dot
            var state: [Version]
            if localIndex != nil, let local {
                // Replicas get the coordinator's whole state of the key: a replica actor's history travels whole.
                guard let written = local.coordinateWrite(
                    key: request.key, actor: .replica(node: endpoint.index, incarnation: incarnation),
                    context: context, value: request.value,
                    tombstone: tombstone, now: now, limit: config.maxSiblings)
                else {
                    refuse(p, value: request.value, out: &out)
                    return
                }
                (state, dot) = written
            } else {
                // A client-side coordinator, or a node that reached none of the key's replicas: loose dots.
                looseCounter += 1
                lastStamp = max(now, lastStamp + 1)
                dot = Dot(actor: endpoint.isClient ? .client(endpoint.index, epoch: incarnation)
                                                   : .loose(node: endpoint.index, incarnation: incarnation),
                          counter: looseCounter)
                state = [Version(dot: dot, context: context, stamp: lastStamp, value: request.value, tombstone: tombstone)]
            }
            p.dot = dot
            p.context = replyContext(sent: context, dot: dot)
            if localIndex == nil && sloppyStandIns { p.state = Siblings.copy(state, pool: pool) }
            let count = p.replicas.count
            let lastRemote = localIndex == count - 1 ? count - 2 : count - 1
            var i = 0
            for node in p.replicas {
                defer { i += 1 }
                if i == localIndex { continue }
                // The last remote replica takes the original buffers when nothing local holds them.
                let versions = (localIndex == nil && i == lastRemote) ? state : Siblings.copy(state, pool: pool)
                let hint = p.hint(i)
                if hint >= 0 { counters.fallbackWrites += 1 }
                out.send(.write(ReplicaWrite(request: id, key: request.key, versions: versions, hintFor: hint)),
                         from: endpoint, to: .node(Int(node)))
                detector.sent(to: Int(node), now: now)
            }
            if lastRemote < 0 && localIndex == nil { Siblings.release(state, pool: pool) }
            if let localIndex, local != nil {
                let only = Siblings.deleted(state) && state.count == 1 && state[0].dot == dot
                recordAck(p, id: id, index: localIndex, tombstoneOnly: only, now: now, out: &out)
            }
        }
    }

    /// The context a put's reply gives its client: the one it sent and the write's dot. The client learns this
    /// one dot, not the actor's earlier ones: kept exact.
    @inline(__always)
    func replyContext(sent context: CausalContext, dot: Dot) -> CausalContext {
        var reply = context
        if config.versioning == .vv { reply.addExact(dot) }
        return reply
    }

    /// Sets whom `p` asks for `key`. With no peer suspected (the common case): its n replicas, a view of the ring.
    /// Otherwise, with hinted handoff on, every suspected replica gets a stand-in: the next fallback of the
    /// preference list that is not suspected, which takes a write as a hint. Sloppy quorum: the stand-in replaces
    /// the replica and counts toward the quorum. Strict: the replica is still asked and only replicas count; a read
    /// asks replicas only.
    func aim(_ p: Pending, at key: Key, replicas: NodeList, write: Bool) {
        guard detector.suspectedCount > 0, config.hintedHandoff, write || config.quorum == .sloppy,
            replicas.contains(where: { detector.isSuspected(Int($0)) })
        else {
            p.replicas = replicas
            if p.hintFor != nil { p.hintFor = nil }
            p.counting = replicas.count >= 64 ? ~0 : (1 << UInt64(replicas.count)) - 1
            return
        }
        let list = ring.preferenceList(for: key)
        var nodes: [UInt16] = []
        var hints: [Int32] = []
        var counting: UInt64 = 0
        var next = config.n
        for r in replicas {
            let suspected = detector.isSuspected(Int(r))
            if !suspected || config.quorum == .strict {
                if nodes.count < 64 { counting |= 1 << UInt64(nodes.count) }
                nodes.append(r)
                hints.append(-1)
            }
            guard suspected else { continue }
            while next < list.count && detector.isSuspected(list[next]) { next += 1 }
            guard next < list.count else { continue }
            if config.quorum == .sloppy && nodes.count < 64 { counting |= 1 << UInt64(nodes.count) }
            nodes.append(UInt16(list[next]))
            hints.append(Int32(r))
            next += 1
        }
        p.own(nodes, capacity: ring.nodeCount)
        p.hintFor = hints
        p.counting = counting
    }

    /// Whether a replica that becomes suspected while a request waits for it gets a stand-in.
    var sloppyStandIns: Bool { config.quorum == .sloppy && config.hintedHandoff }

    /// Sloppy quorum, as Dynamo's coordinator does: every request still short of its quorum that waits on the
    /// newly suspected `node` asks a stand-in instead, the next healthy fallback of the key's preference list
    /// (a write goes there as a hint for `node`).
    func standIn(for node: Int, now: UInt64, local: VersionedStore?, out: inout Outbox) {
        // In request order, not the dictionary's (per-process seeded) order: the simulator must replay exactly.
        for p in pending.inOrder() {
            guard !p.replied else { continue }
            guard let i = p.index(of: .node(node)), p.answered & (1 << i) == 0, p.substituted & (1 << i) == 0,
                p.replicas.count < 63
            else { continue }
            let list = ring.preferenceList(for: Key(p.key))
            guard let fallback = (config.n..<list.count).lazy.map({ list[$0] }).first(where: {
                !detector.isSuspected($0) && !p.replicas.contains(UInt16($0))
            }) else { continue }
            let versions: [Version]
            if p.op == .get {
                versions = []
            } else if let state = p.state {
                versions = Siblings.copy(state, pool: pool)
            } else if let local, !endpoint.isClient {
                versions = Siblings.copy(local.state(of: p.key), pool: pool)
            } else {
                continue
            }
            p.substituted |= 1 << i
            var hints = p.hintFor ?? Array(repeating: -1, count: p.replicas.count)
            let owner = p.hint(i) >= 0 ? p.hint(i) : Int32(node)
            hints.append(owner)
            p.hintFor = hints
            p.counting |= 1 << UInt64(p.replicas.count)
            p.own(Array(p.replicas) + [UInt16(fallback)], capacity: ring.nodeCount)
            if p.op == .get {
                out.send(.read(ReplicaRead(request: p.id, key: p.key)), from: endpoint, to: .node(fallback))
            } else {
                counters.fallbackWrites += 1
                out.send(.write(ReplicaWrite(request: p.id, key: p.key, versions: versions, hintFor: owner)),
                         from: endpoint, to: .node(fallback))
            }
            detector.sent(to: fallback, now: now)
        }
    }

    func armTimeout(at: UInt64, out: inout Outbox) {
        timeoutArmed = true
        out.setTimer(at: at, token: Coordinator.tickBit | (probeGeneration & 0xFF_FFFF) << 8 | Coordinator.timeoutKind)
    }

    /// The timeout timer: every request whose deadline has come and is still pending times out; the timer is set
    /// again for the first request still pending (those finished meanwhile are dropped on the way).
    func timeoutsDue(now: UInt64, local: VersionedStore?, out: inout Outbox) {
        timeoutArmed = false
        while let d = deadlines.first {
            if d.at > now {
                if pending[d.id] != nil {
                    armTimeout(at: d.at, out: &out)
                    return
                }
            } else {
                expire(d.id, now: now, local: local, out: &out)
            }
            deadlines.removeFirst()
        }
    }

    /// Request `id`'s deadline has come: if it is still pending, its client gets a timeout (unless it was answered)
    /// and a read repairs with the answers it has.
    func expire(_ id: UInt64, now: UInt64, local: VersionedStore?, out: inout Outbox) {
        guard let p = pending.remove(id) else { return }  // finished before its timeout
        p.releaseState(pool)
        if !p.replied {
            counters.failed += 1
            out.send(
                .reply(ClientReply(tag: p.tag, op: p.op, key: p.key, status: .timeout, coordinator: endpoint)),
                from: endpoint, to: p.client)
        }
        if p.op == .get { finishRead(p, out: &out) }
        recycle(p)
    }

    /// Keeps a finished request (out of `pending`, its buffers released) for the next one. It must not be touched
    /// after this.
    func recycle(_ p: Pending) {
        if spare.count < 256 { spare.append(p) }
    }

    /// Makes sure the probe tick runs.
    public func ensureProbing(now: UInt64, out: inout Outbox) {
        if probing { return }
        probing = true
        out.setTimer(at: now &+ config.probeInterval,
                     token: Coordinator.tickBit | probeGeneration << 8 | Coordinator.probeKind)
    }

    /// The probe tick: suspects peers that left messages unanswered too long and pings the suspected ones.
    func probe(now: UInt64, local: VersionedStore?, out: inout Outbox) {
        probing = false
        let before = sloppyStandIns ? detector.suspects : []
        let newly = detector.check(now: now)
        counters.suspicions += newly
        if newly > 0 && sloppyStandIns {
            for node in detector.suspects where !before.contains(node) { standIn(for: node, now: now, local: local, out: &out) }
        }
        for s in detector.suspects where !(s == endpoint.index && !endpoint.isClient) {
            out.send(.ping(now), from: endpoint, to: .node(s))
            counters.pings += 1
        }
        if !pending.isEmpty || detector.suspectedCount > 0 || detector.waiting { ensureProbing(now: now, out: &out) }
    }

    // MARK: - Answers from replicas

    /// A replica acknowledged a write.
    public func writeAcked(_ ack: ReplicaAck, from: Endpoint, now: UInt64, out: inout Outbox) {
        guard let p = pending[ack.request] else {
            counters.lateReplies += 1
            return
        }
        guard p.op != .get, p.key == ack.key, let index = p.index(of: from) else {
            counters.ignored += 1
            return
        }
        if p.answered & (1 << index) != 0 {
            counters.duplicateReplies += 1
            return
        }
        recordAck(p, id: ack.request, index: index, tombstoneOnly: ack.tombstoneOnly, refused: ack.rejected, now: now,
                  out: &out)
    }

    /// The coordinating replica refused the write (``CoreConfig/maxSiblings``), as Riak's does: before anything
    /// was sent, so the client hears at once.
    @inline(never)
    func refuse(_ p: Pending, value: PoolBuffer?, out: inout Outbox) {
        if let value { pool.release(value) }
        pending.remove(p.id)  // (its deadline finds it gone)
        replyRejected(p, out: &out)
        recycle(p)
    }

    /// Tells the client its write was refused (``CoreConfig/maxSiblings``): its one reply. It carries the write's
    /// dot when the write was given one (some replica may hold it); refused before that, by the coordinating
    /// replica, nothing anywhere holds it, and the reply has no dot.
    @inline(never)
    func replyRejected(_ p: Pending, out: inout Outbox) {
        p.replied = true
        counters.failed += 1
        counters.rejected += 1
        out.send(.reply(ClientReply(tag: p.tag, op: p.op, key: p.key, status: .rejected, dot: p.dot,
                                    coordinator: endpoint)),
                 from: endpoint, to: p.client)
    }

    /// A replica answered a read.
    public func readAnswered(_ response: ReplicaReadResponse, from: Endpoint, now: UInt64, out: inout Outbox) {
        guard let p = pending[response.request] else {
            counters.lateReplies += 1
            Siblings.release(response.versions, pool: pool)
            return
        }
        guard p.op == .get, p.key == response.key, let index = p.index(of: from) else {
            counters.ignored += 1
            Siblings.release(response.versions, pool: pool)
            return
        }
        if p.answered & (1 << index) != 0 {
            counters.duplicateReplies += 1
            Siblings.release(response.versions, pool: pool)
            return
        }
        if response.same {
            // The replica holds exactly what this coordinator read locally.
            guard let local = p.localVersions else {
                counters.ignored += 1
                return
            }
            p.aliases |= 1 << index
            recordResponse(p, id: response.request, index: index, versions: local, now: now, out: &out)
            return
        }
        recordResponse(p, id: response.request, index: index, versions: response.versions, now: now, out: &out)
    }

    /// A replica's ack of a write, or its refusal (`refused`: the key was at ``CoreConfig/maxSiblings``). Once too
    /// few of the replicas that count toward the quorum are left to reach w, the client hears so at once rather
    /// than at the timeout.
    func recordAck(_ p: Pending, id: UInt64, index: Int, tombstoneOnly: Bool, refused: Bool = false, now: UInt64,
                   out: inout Outbox) {
        p.answered |= 1 << index
        p.answers += 1
        if !refused && p.counting & (1 << index) != 0 { p.quorumAnswers += 1 }
        if !tombstoneOnly || refused { p.allTombstoneOnly = false }
        if !p.replied && p.quorumAnswers >= config.w {
            p.replied = true
            counters.ok += 1
            out.send(
                .reply(ClientReply(tag: p.tag, op: p.op, key: p.key, status: .ok, context: p.context, dot: p.dot,
                                   coordinator: endpoint)),
                from: endpoint, to: p.client)
        } else if refused && !p.replied && p.quorumAnswers + (p.counting & ~p.answered).nonzeroBitCount < config.w {
            replyRejected(p, out: &out)
        }
        // Everyone asked has answered. Short of its quorum (fewer nodes reachable than w) the request stays until
        // a stand-in completes it or its timeout answers the client: every request gets exactly one reply.
        if p.answers == p.replicas.count && p.replied {
            pending.remove(id)
            p.releaseState(pool)
            if p.op == .delete && p.allTombstoneOnly && p.hintFor == nil, let dot = p.dot {
                // Every replica holds exactly this tombstone: purge it after the grace period.
                let token = Coordinator.purgeTokenBit | id
                purges[token] = PendingPurge(key: p.key, dots: [dot], replicas: Array(p.replicas))
                out.setTimer(at: now &+ config.tombstoneGrace, token: token)
            }
            recycle(p)
        }
    }

    func recordResponse(
        _ p: Pending, id: UInt64, index: Int, versions: [Version], now: UInt64, out: inout Outbox
    ) {
        p.answered |= 1 << index
        p.answers += 1
        if p.counting & (1 << index) != 0 { p.quorumAnswers += 1 }
        p.responses.append((index, versions))
        if !p.replied && p.quorumAnswers >= config.r {
            p.replied = true
            counters.ok += 1
            let state = reconcile(p.responses)
            out.send(
                .reply(ClientReply(tag: p.tag, op: .get, key: p.key, status: .ok, versions: state,
                                   context: config.versioning == .vv ? Siblings.clock(of: state) : .empty,
                                   coordinator: endpoint)),
                from: endpoint, to: p.client)
        }
        if p.answers == p.replicas.count && p.replied {  // as for writes: short of r, the timeout answers
            pending.remove(id)
            finishRead(p, out: &out)
            recycle(p)
        }
    }

    /// The responses merged into one state: reconciled on the versions' metadata, then each surviving version's
    /// value copied once (from the first response that holds it).
    func reconcile(_ responses: [(index: Int, versions: [Version])]) -> [Version] {
        // The common case: the replicas agree, and the answer is any one of them.
        if agree(responses) { return Siblings.copy(responses[0].versions, pool: pool) }
        return withValues(reconciledMetadata(responses), from: responses)
    }

    /// Whether every response holds the same versions (then reconciling them changes nothing).
    func agree(_ responses: [(index: Int, versions: [Version])]) -> Bool {
        let first = responses[0].versions
        return responses.dropFirst().allSatisfy { Siblings.same($0.versions, first) }
    }

    /// The merged state without values.
    func reconciledMetadata(_ responses: [(index: Int, versions: [Version])]) -> [Version] {
        if responses.count == 1 { return responses[0].versions.map { var v = $0; v.value = nil; return v } }
        var state: [Version] = []
        for r in responses {
            Siblings.merge(&state, r.versions.map { var v = $0; v.value = nil; return v },
                           mode: config.versioning, pool: pool)
        }
        return state
    }

    /// `state` with its values (shared, or copied if not shareable), taken from the responses.
    func withValues(_ state: [Version], from responses: [(index: Int, versions: [Version])]) -> [Version] {
        state.map { v -> Version in
            var c = v
            for r in responses {
                if let held = r.versions.first(where: { $0.dot == v.dot }) {
                    c.value = held.value.map { pool.share($0) }
                    break
                }
            }
            return c
        }
    }

    /// Read repair: every replica that answered with something older or nothing gets the reconciled state.
    /// The reconciliation is done on the versions' metadata; values are copied only for the repairs sent.
    func finishRead(_ p: Pending, out: inout Outbox) {
        defer { p.releaseResponses(pool) }
        guard config.readRepair, p.replied, p.responses.count > 1, !agree(p.responses) else { return }
        let final = reconciledMetadata(p.responses)
        if final.isEmpty { return }
        for r in p.responses where !Siblings.same(r.versions, final) {
            counters.readRepairs += 1
            out.send(.write(ReplicaWrite(request: 0, key: p.key, versions: withValues(final, from: p.responses),
                                         hintFor: p.hint(r.index), origin: .readRepair)),
                     from: endpoint, to: .node(Int(p.replicas[r.index])))
        }
    }

    // MARK: - Timers

    /// A timer this coordinator asked for has come due. Returns false if the token is not its own.
    @discardableResult
    public func timerFired(_ token: UInt64, now: UInt64, local: VersionedStore?, out: inout Outbox) -> Bool {
        if token & Coordinator.tickBit != 0 {
            let kind = token & 0xFF
            guard kind == Coordinator.probeKind || kind == Coordinator.timeoutKind else { return false }
            guard token >> 8 & 0xFF_FFFF == probeGeneration & 0xFF_FFFF else { return true }  // from an earlier life
            if kind == Coordinator.probeKind {
                probe(now: now, local: local, out: &out)
            } else {
                timeoutsDue(now: now, local: local, out: &out)
            }
            return true
        }
        if token & Coordinator.purgeTokenBit != 0 {
            guard let purge = purges.removeValue(forKey: token) else { return false }
            counters.purgesSent += 1
            for node in purge.replicas {
                if Int(node) == endpoint.index && !endpoint.isClient, let local {
                    if local.purge(key: purge.key, dots: purge.dots) { counters.tombstonesPurged += 1 }
                } else {
                    out.send(.purge(Purge(key: purge.key, dots: purge.dots)), from: endpoint, to: .node(Int(node)))
                }
            }
            return true
        }
        return false
    }

    /// Abandons every request in flight (the node went down): their buffers are released, no reply is sent. What
    /// it knew of its peers goes too.
    public func abandonAll() {
        for p in pending.inOrder() {
            p.releaseResponses(pool)
            p.releaseState(pool)
        }
        pending.removeAll()
        deadlines.removeAll()
        timeoutArmed = false
        purges.removeAll()
        detector.reset()
        probing = false
        probeGeneration += 1
    }
}
