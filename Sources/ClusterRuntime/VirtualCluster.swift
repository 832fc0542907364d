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
    public let nodes: [Node]
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

    enum Event {
        case message(Envelope)
        /// A node has finished serving a message (service time): it is handled now.
        case handle(Envelope)
        case nodeTimer(Int, UInt64)
        case clientTimer(Int, UInt64)
        case wake(UInt64)
        case fault([NodeCondition])
    }

    /// Events by (time, sequence). Most are timeouts of requests long finished, pushed in time order: the queue
    /// keeps those in FIFO lanes, which kept in one heap made it tens of thousands deep. The queue holds a slot
    /// number (trivial to move); the event itself waits in `slab`.
    var queue = TimerQueue<Int>()
    var slab: [Event?] = []
    var freeSlots: [Int] = []
    var rng: Xoshiro
    var outbox = Outbox()
    var spareBuffers: [[Envelope]] = []
    let transmission: Transmission
    let crashMode: CrashMode
    var conditions: [NodeCondition]
    var held: [[Event]]
    var busyUntil: [UInt64]
    /// Client-side coordinators (`--routing client`).
    public let coordinators: [Coordinator?]
    /// Server routing: per client, which node coordinates each request.
    var choices: [CoordinatorChoice]

    public init(options: ClusterOptions, faults: FaultPlan = FaultPlan(), serviceTime: Distribution? = nil) {
        precondition(options.core.problem == nil, options.core.problem ?? "")
        self.options = options
        ring = options.core.makeRing()
        nodes = (0..<options.core.nodes).map { [ring] in Node(id: $0, config: options.core, ring: ring, pool: options.pool) }
        self.serviceTime = serviceTime
        rng = Xoshiro.derive(options.seed, 0x5649_5254)  // "VIRT"
        transmission = Transmission(drop: options.drop, delays: options.delays, slowDelays: faults.slowDelays)
        crashMode = faults.crashMode
        conditions = Array(repeating: NodeCondition(), count: options.core.nodes)
        held = Array(repeating: [], count: options.core.nodes)
        busyUntil = Array(repeating: 0, count: options.core.nodes)
        coordinators = (0..<options.clients).map { [ring] c in
            options.core.routing == .client
                ? Coordinator(endpoint: .client(c), config: options.core, ring: ring, pool: options.pool) : nil
        }
        choices = Array(repeating: CoordinatorChoice(nodes: options.core.nodes), count: options.clients)
        for node in nodes {
            node.boot(now: 0, out: &outbox)
            dispatch(from: .node(node.id))
        }
    }

    deinit { discardAll() }

    // MARK: - The event queue

    @inline(__always)
    func push(_ at: UInt64, _ event: consuming Event) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slab[slot] = event
        } else {
            slot = slab.count
            slab.append(event)
        }
        queue.push(at: at, slot)
    }

    /// Removes the earliest event and returns its time and event.
    @inline(__always)
    func pop() -> (at: UInt64, event: Event) {
        let top = queue.popEntry(due: .max)!
        let event = slab[top.payload].take()!
        freeSlots.append(top.payload)
        return (top.at, event)
    }

    /// The time of the next event, if any.
    public var nextEventTime: UInt64? { queue.nextTime }

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
        guard !queue.isEmpty else { return false }
        let e = pop()
        now = max(now, e.at)
        events += 1
        switch e.event {
        case .message(let envelope): arrive(envelope)
        case .handle(let envelope): handle(envelope)
        case .nodeTimer(let node, let token): nodeTimer(node, token)
        case .clientTimer(let client, let token):
            coordinators[client]?.timerFired(token, now: now, local: nil, out: &outbox)
            dispatch(from: .client(client))
        case .wake(let token): onWake(token)
        case .fault(let snapshot): apply(snapshot)
        }
        return true
    }

    /// Asks for ``onWake`` with `token` at `time`.
    public func wake(at time: UInt64, token: UInt64) { push(max(time, now), .wake(token)) }

    /// Schedules the fault timeline, its times counted from `origin`.
    public func schedule(_ timeline: [(at: UInt64, conditions: [NodeCondition])], from origin: UInt64) {
        for (at, snapshot) in timeline { push(origin &+ at, .fault(snapshot)) }
    }

    /// Every node up, no partition, nothing slow or stalled (the faults heal).
    public func heal() { apply(Array(repeating: NodeCondition(), count: nodes.count)) }

    // MARK: - Clients

    /// Client `c` submits a request now.
    public func submit(client c: Int, _ request: ClientRequest) {
        if let coordinator = coordinators[c] {
            coordinator.start(request, from: .client(c), now: now, local: nil, out: &outbox)
            dispatch(from: .client(c))
        } else {
            sendRequest(client: c, request,
                        to: choices[c].pick(for: request.key, ring: ring, n: options.core.n, now: now, rng: &rng))
        }
    }

    func sendRequest(client c: Int, _ request: ClientRequest, to node: Int?) {
        guard let node else {
            if let v = request.value { options.pool.release(v) }
            choices[c].finished(request.tag)
            onReply(c, ClientReply(tag: request.tag, op: request.op, key: request.key, status: .unavailable,
                                   coordinator: .client(c)))
            return
        }
        send(Envelope(from: .client(c), to: .node(node), message: .request(request)))
    }

    func clientReceives(_ c: Int, _ envelope: Envelope) {
        if let coordinator = coordinators[c], !envelope.from.isClient {
            coordinator.detector.heard(from: envelope.from.index)
        }
        switch envelope.message {
        case .reply(let reply):
            choices[c].finished(reply.tag)
            onReply(c, reply)
        case .writeAck(let ack):
            coordinators[c]?.writeAcked(ack, from: envelope.from, now: now, out: &outbox)
            dispatch(from: .client(c))
        case .readResponse(let response):
            if let coordinator = coordinators[c] {
                coordinator.readAnswered(response, from: envelope.from, now: now, out: &outbox)
                dispatch(from: .client(c))
            } else {
                envelope.message.release(to: options.pool)
            }
        case .request(let request) where coordinators[c] == nil && !envelope.from.isClient:
            // Refused by a down node: another coordinator, or the request fails.
            sendRequest(client: c, request, to: choices[c].refused(request.tag, key: request.key, by: envelope.from.index,
                                                                   ring: ring, n: options.core.n, now: now, rng: &rng))
        default:
            envelope.message.release(to: options.pool)
        }
    }

    // MARK: - Messages

    /// Sends a message now: loss, partitions, delays (``Transmission``).
    func send(_ e: consuming Envelope) {
        switch transmission.fate(of: e, now: now, rng: &rng, conditions: conditions) {
        case .deliver(let at): push(at, .message(e))
        case .dropped:
            droppedMessages += 1
            e.message.release(to: options.pool)
        case .partitioned:
            partitionedMessages += 1
            e.message.release(to: options.pool)
        }
    }

    func dispatch(from source: Endpoint) {
        for t in outbox.timers {
            push(t.at, source.isClient ? .clientTimer(source.index, t.token) : .nodeTimer(source.index, t.token))
        }
        outbox.timers.removeAll(keepingCapacity: true)
        // Swapped out first: a reply handed to the driver may submit the next request, which fills the outbox
        // anew (and dispatches again). Emptied buffers are kept for reuse: copying the array out and clearing the
        // outbox would allocate a new buffer on every dispatch.
        var messages = spareBuffers.popLast() ?? []
        swap(&messages, &outbox.messages)
        messages.drain { e in
            if e.to.isClient && e.to == source, case .reply(let reply) = e.message {
                onReply(source.index, reply)  // a client-side coordinator answering its own client
                return
            }
            send(e)
        }
        spareBuffers.append(messages)
    }

    func arrive(_ e: Envelope) {
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
            push(busyUntil[node], .handle(e))
        } else {
            handle(e)
        }
    }

    func handle(_ e: Envelope) {
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
        nodes[node].handle(e, now: now, out: &outbox)
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
                for event in waiting { push(now, event) }  // in their order, handled now
            }
        }
    }

    func release(_ event: Event) {
        switch event {
        case .message(let e), .handle(let e): e.message.release(to: options.pool)
        default: break
        }
    }

    /// Drops every event still queued (releasing buffers) and abandons requests in flight.
    public func discardAll() {
        for slot in queue.removeAll() { if let e = slab[slot] { release(e) } }
        slab.removeAll()
        freeSlots.removeAll()
        for list in held { for event in list { release(event) } }
        for i in held.indices { held[i].removeAll() }
        for node in nodes { node.coordinator.abandonAll() }
        for c in coordinators { c?.abandonAll() }
    }

    /// Everything the nodes and client-side coordinators counted.
    public var counters: CoreCounters {
        var c = CoreCounters()
        for n in nodes { c.add(n.counters) }
        for co in coordinators { if let co { c.add(co.counters) } }
        return c
    }
}
