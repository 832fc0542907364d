import BufferPool
import ReplicationCore
import SyncPrimitives

/// The same nodes, coordinators and faults as ``InProcessCluster``, run by a discrete-event simulation in virtual
/// time on the calling thread: an event queue ordered by (time, sequence), every delay drawn from the `--delay*`
/// distributions with one seeded generator, so the same seed replays the same run exactly.
///
/// With a service time each node handles its messages one at a time, each taking a draw of it, so load builds
/// queues. Clients are addressed by number; their replies and wake-ups go to the driver's callbacks.
public final class VirtualCluster {
    public let options: ClusterOptions
    public let ring: Ring
    /// The nodes, called once per message (``Unretained``).
    let nodeRefs: Unretained<Node>
    public var nodes: [Node] { nodeRefs.objects }
    public let serviceTime: Distribution?
    /// Virtual time, ns.
    public private(set) var now: UInt64 = 0
    /// Messages lost to `--drop` and to partitions.
    public private(set) var droppedMessages = 0
    public private(set) var partitionedMessages = 0
    /// Events handled so far.
    public private(set) var events = 0

    /// A reply reached client `c`.
    public var onReply: (_ client: Int, _ reply: ClientReply) -> Void = { _, _ in }
    /// A wake-up the driver asked for with ``wake(at:token:)``.
    public var onWake: (_ token: UInt64) -> Void = { _ in }
    /// Test hook: node `i` is about to be wiped, holding these versions.
    public var onWipe: ((_ node: Int, _ versions: [Version]) -> Void)?

    /// An event parked while its node is stalled, handled (in order) when the stall ends.
    enum Held {
        case message(Envelope)
        /// A message whose service time ended: it is handled now.
        case handle(Envelope)
        case nodeTimer(Int, UInt64)
    }

    /// Events by (time, sequence), in two queues that share one sequence. Timers, wake-ups and faults: most are
    /// timeouts of requests long finished, pushed in time order, which `queue` keeps in FIFO lanes (in one heap
    /// they made it tens of thousands deep). Messages, whose random delays fit no lane: `messages`, a calendar.
    /// Both hold an event's kind (top byte) and a slot number; what it carries waits in a slab by kind, moved in
    /// and out, never copied.
    var queue = TimerQueue<Int>()
    let messages: CalendarQueue
    /// Envelopes of `.message` and `.handle` events.
    var mail = Slab<Envelope>()
    /// Client and node numbers and tokens of timers and wake-ups.
    var ticks = Slab<Tick>()
    /// Fault timeline snapshots (few; kept to the end).
    var snapshots: [[NodeCondition]] = []

    struct Tick {
        var who: Int
        var token: UInt64
    }

    enum Kind {
        /// A message arrives (service time: it waits for its node).
        static let message = 0
        /// A node has finished serving a message (service time): it is handled now.
        static let handle = 1
        static let nodeTimer = 2
        static let clientTimer = 3
        static let wake = 4
        static let fault = 5
        static let shift = 56
        static let slotMask = (1 << shift) - 1
    }

    var rng: Xoshiro
    var outbox = Outbox()
    /// The outermost dispatch's buffer, and nested dispatches' (see ``dispatch(from:)``).
    var dispatchBuffer = Envelopes()
    var dispatching = false
    var spareBuffers: [Envelopes] = []
    let transmission: Transmission
    let crashMode: CrashMode
    var conditions: [NodeCondition] {
        didSet { faulty = conditions.contains { $0 != NodeCondition() } }
    }
    /// Some node is not in the default condition (down, stalled, partitioned or slow). When none is, a message's
    /// fate does not look at conditions (handing the array over retained and released it, once per message).
    var faulty = false
    var held: [[Held]]
    var busyUntil: [UInt64]
    /// Client-side coordinators, one per client (`--routing client`; nil: server routing).
    let clientCoordinators: Unretained<Coordinator>?
    /// Server routing: per client, which node coordinates each request.
    var choices: [CoordinatorChoice]

    public init(options: ClusterOptions, faults: FaultPlan = FaultPlan(), serviceTime: Distribution? = nil) {
        precondition(options.core.problem == nil, options.core.problem ?? "")
        self.options = options
        ring = options.core.makeRing()
        nodeRefs = Unretained((0..<options.core.nodes).map { [ring] in
            Node(id: $0, config: options.core, ring: ring, pool: options.pool)
        })
        self.serviceTime = serviceTime
        rng = Xoshiro.derive(options.seed, 0x5649_5254)  // "VIRT"
        transmission = Transmission(drop: options.drop, delays: options.delays, slowDelays: faults.slowDelays)
        // Buckets sized by the shortest message delay: most messages land in a bucket of their own.
        messages = CalendarQueue(scale: options.delays.byKind.compactMap { $0?.mean }.filter { $0 > 0 && $0.isFinite }.min() ?? 0)
        crashMode = faults.crashMode
        conditions = Array(repeating: NodeCondition(), count: options.core.nodes)
        held = Array(repeating: [], count: options.core.nodes)
        busyUntil = Array(repeating: 0, count: options.core.nodes)
        clientCoordinators = options.core.routing != .client ? nil : Unretained((0..<options.clients).map { [ring] c in
            Coordinator(endpoint: .client(c), config: options.core, ring: ring, pool: options.pool)
        })
        choices = Array(repeating: CoordinatorChoice(nodes: options.core.nodes), count: options.clients)
        for node in nodes {
            node.boot(now: 0, out: &outbox)
            dispatch(from: .node(node.id))
        }
    }

    deinit { discardAll() }

    // MARK: - The event queue

    @inline(__always)
    func push(_ at: UInt64, _ kind: Int, _ envelope: consuming Envelope) {
        messages.push(at: at, seq: queue.takeSequence(), payload: kind << Kind.shift | mail.put(envelope), now: now)
    }

    @inline(__always)
    func push(_ at: UInt64, _ kind: Int, who: Int, token: UInt64) {
        queue.push(at: at, kind << Kind.shift | ticks.put(Tick(who: who, token: token)))
    }

    /// The time of the next event, if any.
    public var nextEventTime: UInt64? {
        guard let m = messages.peek() else { return queue.nextTime }
        return min(m.at, queue.nextTime ?? .max)
    }

    /// Handles every event due at or before `time`, then sets the clock to `time`.
    public func run(until time: UInt64) {
        while let next = nextEventTime, next <= time {
            step()
        }
        if time > now { now = time }
    }

    /// Handles the next event. Returns false if there is none.
    @discardableResult
    public func step() -> Bool {
        let at: UInt64, payload: Int
        if let e = messages.pop(before: queue.earliest) {
            (at, payload) = (e.at, e.payload)
        } else {
            guard let top = queue.popEntry(due: .max) else { return false }
            (at, payload) = (top.at, top.payload)
        }
        now = max(now, at)
        events += 1
        let slot = payload & Kind.slotMask
        switch payload >> Kind.shift {
        case Kind.message: arrive(mail.take(slot))
        case Kind.handle: handle(mail.take(slot))
        case Kind.nodeTimer:
            let t = ticks.take(slot)
            nodeTimer(t.who, t.token)
        case Kind.clientTimer:
            let t = ticks.take(slot)
            _ = clientCoordinators?.with(t.who) { $0.timerFired(t.token, now: now, local: nil, out: &outbox) }
            dispatch(from: .client(t.who))
        case Kind.wake: onWake(ticks.take(slot).token)
        default: apply(snapshots[slot])
        }
        return true
    }

    /// Asks for ``onWake`` with `token` at `time`.
    public func wake(at time: UInt64, token: UInt64) { push(max(time, now), Kind.wake, who: 0, token: token) }

    /// Schedules the fault timeline, its times counted from `origin`.
    public func schedule(_ timeline: [(at: UInt64, conditions: [NodeCondition])], from origin: UInt64) {
        for (at, snapshot) in timeline {
            queue.push(at: origin &+ at, Kind.fault << Kind.shift | snapshots.count)
            snapshots.append(snapshot)
        }
    }

    /// Every node up, no partition, nothing slow or stalled (the faults heal).
    public func heal() { apply(Array(repeating: NodeCondition(), count: nodes.count)) }

    // MARK: - Clients

    /// Loads one record without messages, at the current time: as a fault-free blind insert leaves it, coordinated by
    /// the key's first replica (where a server-side coordinator that is not a replica forwards a write), every
    /// replica holding it. Returns the context the put's reply gives its client.
    ///
    /// Loading through messages cost ~14,000 instructions a record (the coordinator, n replica writes and their
    /// acks, each an event with its delay draw, the reply): as much as a measured operation, and all of it outside
    /// every figure. It also left what `--drop` lost during the load for the measured phase to repair.
    public func preload(key: UInt64, value: PoolBuffer?) -> CausalContext {
        let replicas = ring.replicas(of: Key(key), n: options.core.n)
        let (state, reply) = nodes[Int(replicas.first!)].preload(key: key, value: value, now: now)
        for node in replicas.dropFirst() { nodes[Int(node)].store.apply(key: key, Siblings.copy(state, pool: options.pool)) }
        return reply
    }

    /// Client `c` submits a request now.
    public func submit(client c: Int, _ request: ClientRequest) {
        if let coordinators = clientCoordinators {
            coordinators.with(c) { $0.start(request, from: .client(c), now: now, local: nil, out: &outbox) }
            dispatch(from: .client(c))
        } else {
            sendRequest(client: c, request,
                        to: choices[c].pick(for: request.key, ring: ring, n: options.core.n, now: now, rng: &rng))
        }
    }

    /// Sends `request` to `node`; nil: every node it was sent to refused it, and it fails (from inside the handling
    /// of the last refusal, an event: never from inside the submit of the request it answers).
    func sendRequest(client c: Int, _ request: ClientRequest, to node: Int?) {
        guard let node else {
            if let v = request.value { options.pool.release(v) }
            choices[c].finished(request.tag)
            onReply(c, ClientReply(tag: request.tag, op: request.op, key: request.key, status: .unavailable,
                                   coordinator: .client(c)))
            return
        }
        if !choices[c].holds(node, now: now) {
            send(Envelope(from: .client(c), to: .node(node), message: .request(request)))
        } else {
            hold(Envelope(from: .client(c), to: .node(node), message: .request(request)), client: c)
        }
    }

    /// A request to a node its client still passes over (every node refused lately): it arrives once the node may
    /// be tried (``CoordinatorChoice/arrival(_:to:)``). A client's message is neither dropped nor partitioned.
    @inline(never)
    func hold(_ e: consuming Envelope, client c: Int) {
        let fate = transmission.fate(kind: e.message.kind, from: e.from, to: e.to, now: now, rng: &rng,
                                     conditions: faulty ? conditions : nil)
        guard case .deliver(let at) = fate else { preconditionFailure("a client's request was lost") }
        push(choices[c].arrival(at, to: e.to.index), Kind.message, e)
    }

    func clientReceives(_ c: Int, _ envelope: Envelope) {
        let coordinators = clientCoordinators
        if let coordinators, !envelope.from.isClient {
            coordinators.with(c) { $0.detector.heard(from: envelope.from.index) }
        }
        switch envelope.message {
        case .reply(let reply):
            choices[c].finished(reply.tag)
            onReply(c, reply)
        case .writeAck(let ack):
            coordinators?.with(c) { $0.writeAcked(ack, from: envelope.from, now: now, out: &outbox) }
            dispatch(from: .client(c))
        case .readResponse(let response):
            if let coordinators {
                coordinators.with(c) { $0.readAnswered(response, from: envelope.from, now: now, out: &outbox) }
                dispatch(from: .client(c))
            } else {
                envelope.message.release(to: options.pool)
            }
        case .request(let request) where coordinators == nil && !envelope.from.isClient:
            // Refused by a down node: another coordinator, or the request fails.
            sendRequest(client: c, request, to: choices[c].refused(request.tag, key: request.key, by: envelope.from.index,
                                                                   ring: ring, n: options.core.n, now: now, rng: &rng))
        default:
            envelope.message.release(to: options.pool)
        }
    }

    // MARK: - Messages

    /// Sends a message now: loss, partitions, delays (``Transmission``).
    @inline(__always)
    func send(_ e: consuming Envelope) {
        var e = e
        withUnsafeMutablePointer(to: &e) { p in
            send(moving: p)
            p.initialize(to: .vacant)
        }
    }

    /// Sends the envelope at `p`, moved into the queue's slab by its bytes (or destroyed when lost): `p` is left
    /// uninitialized. An envelope handed on by value was copied and destroyed on the way, twice per message (a
    /// retain and a release of everything it carries).
    @inline(__always)
    func send(moving p: UnsafeMutablePointer<Envelope>) {
        let kind = p.pointee.message.kind, from = p.pointee.from, to = p.pointee.to
        switch transmission.fate(kind: kind, from: from, to: to, now: now, rng: &rng,
                                 conditions: faulty ? conditions : nil) {
        case .deliver(let at):
            messages.push(at: at, seq: queue.takeSequence(), payload: Kind.message << Kind.shift | mail.put(moving: p),
                          now: now)
            return
        case .dropped: droppedMessages += 1
        case .partitioned: partitionedMessages += 1
        }
        p.pointee.message.release(to: options.pool)
        p.deinitialize(count: 1)
    }

    func dispatch(from source: Endpoint) {
        if !outbox.timers.isEmpty {
            let kind = source.isClient ? Kind.clientTimer : Kind.nodeTimer
            for t in outbox.timers { push(t.at, kind, who: source.index, token: t.token) }
            outbox.timers.emptyKeepingCapacity()
        }
        if outbox.messages.isEmpty { return }
        // Swapped out first: a reply handed to the driver may submit the next request, which fills the outbox
        // anew (and dispatches again, nested). The outermost dispatch swaps with a buffer of its own; nested ones
        // with spare buffers. Emptied buffers keep their capacity: copying the array out and clearing the outbox
        // would allocate a new buffer on every dispatch.
        if dispatching {
            var messages = spareBuffers.popLast() ?? Envelopes()
            swap(&messages, &outbox.messages)
            messages.drain(moving: { send(moving: $0, from: source) })
            spareBuffers.append(messages)
        } else {
            dispatching = true
            swap(&dispatchBuffer, &outbox.messages)
            dispatchBuffer.drain(moving: { send(moving: $0, from: source) })
            dispatching = false
        }
    }

    /// Sends one envelope of `source`'s outbox (a client-side coordinator's reply to its own client goes straight
    /// to the driver).
    @inline(__always)
    func send(moving p: UnsafeMutablePointer<Envelope>, from source: Endpoint) {
        if source.isClient && p.pointee.to == source, case .reply = p.pointee.message {
            if case .reply(let reply) = p.move().message { onReply(source.index, reply) }
        } else {
            send(moving: p)
        }
    }

    func arrive(_ e: consuming Envelope) {
        if e.to.isClient {
            clientReceives(e.to.index, e)
            return
        }
        let node = e.to.index
        guard node < nodes.count else {
            e.message.release(to: options.pool)
            return
        }
        let c = conditions[node]
        if c.down {
            // Nobody listening: a client's request is refused at once (a closed port); anything else is lost.
            if case .request = e.message, e.from.isClient {
                send(Envelope(from: e.to, to: e.from, message: e.message))
            } else {
                e.message.release(to: options.pool)
            }
            return
        }
        if c.stalled {
            held[node].append(.message(e))
            return
        }
        if let serviceTime {
            // One message at a time: this one is served after those before it.
            let start = max(now, busyUntil[node])
            busyUntil[node] = start &+ UInt64(max(0, serviceTime.sample(&rng)))
            push(busyUntil[node], Kind.handle, e)
        } else {
            handle(e)
        }
    }

    func handle(_ e: consuming Envelope) {
        let node = e.to.index
        let c = conditions[node]
        if c.down {
            e.message.release(to: options.pool)
            return
        }
        if c.stalled {
            held[node].append(.handle(e))
            return
        }
        nodeRefs.with(node) { $0.handle(e, now: now, out: &outbox) }
        dispatch(from: .node(node))
    }

    func nodeTimer(_ node: Int, _ token: UInt64) {
        let c = conditions[node]
        if c.down { return }
        if c.stalled {
            held[node].append(.nodeTimer(node, token))
            return
        }
        nodes[node].timer(token, now: now, out: &outbox)
        dispatch(from: .node(node))
    }

    // MARK: - Faults

    func apply(_ snapshot: [NodeCondition]) {
        for (node, new) in snapshot.enumerated() where node < nodes.count {
            let old = conditions[node]
            conditions[node] = new
            if new.down && !old.down {
                for event in held[node] { release(event) }
                held[node].removeAll()
                busyUntil[node] = now
                nodes[node].fail(crashMode, onWipe: onWipe)
            } else if !new.down && old.down {
                nodes[node].boot(now: now, out: &outbox)
                dispatch(from: .node(node))
            }
            if !new.down && !new.stalled && old.stalled {
                let waiting = held[node]
                held[node].removeAll()
                for event in waiting { requeue(event) }  // in their order, handled now
            }
        }
    }

    func requeue(_ event: Held) {
        switch event {
        case .message(let e): push(now, Kind.message, e)
        case .handle(let e): push(now, Kind.handle, e)
        case .nodeTimer(let node, let token): push(now, Kind.nodeTimer, who: node, token: token)
        }
    }

    func release(_ event: Held) {
        switch event {
        case .message(let e), .handle(let e): e.message.release(to: options.pool)
        case .nodeTimer: break
        }
    }

    /// Drops every event still queued (releasing buffers) and abandons requests in flight.
    public func discardAll() {
        for payload in queue.removeAll() + messages.removeAll() {
            let slot = payload & Kind.slotMask
            switch payload >> Kind.shift {
            case Kind.message, Kind.handle: mail.take(slot).message.release(to: options.pool)
            case Kind.nodeTimer, Kind.clientTimer, Kind.wake: _ = ticks.take(slot)
            default: break
            }
        }
        snapshots.removeAll()
        for list in held { for event in list { release(event) } }
        for i in held.indices { held[i].removeAll() }
        for node in nodes { node.coordinator.abandonAll() }
        for c in clientCoordinators?.objects ?? [] { c.abandonAll() }
    }

    /// Everything the nodes and client-side coordinators counted.
    public var counters: CoreCounters {
        var c = CoreCounters()
        for n in nodes { c.add(n.counters) }
        for co in clientCoordinators?.objects ?? [] { c.add(co.counters) }
        return c
    }
}
