import BufferPool
import Foundation
import ReplicationCore
import SyncPrimitives

/// A load-generator thread's connection to an in-process cluster: non-blocking submission of gets, puts and
/// deletes, many in flight, and replies collected by ``poll(now:_:)``. One port belongs to one thread.
///
/// With `--routing server` a request goes to a coordinator node: one of the key's n replicas chosen at random
/// (a token-aware client), unless the caller names one. With `--routing client` the port runs the coordinator itself and talks to every replica.
public final class ClientPort: @unchecked Sendable {
    public let id: Int
    public let endpoint: Endpoint
    unowned(unsafe) let cluster: InProcessCluster
    @exclusivity(unchecked) var router: Router
    let consumer: Int
    /// The cluster's workers (their lanes come before the clients').
    let workerCount: Int
    /// What the per-request paths read of the cluster, looked up once: read through the cluster, which every
    /// thread shares, each read retained and released it (its reference count a cache line all threads write).
    let ring: Ring
    let n: Int
    let inLanes: [SPSCRing<Parcel>]
    let parker: Parker
    /// The client-side coordinator (`--routing client`).
    public let coordinator: Coordinator?
    @exclusivity(unchecked) var delayed = TimerHeap<Envelope>()
    @exclusivity(unchecked) var timers = TimerQueue<UInt64>()
    @exclusivity(unchecked) var outbox = Outbox()
    @exclusivity(unchecked) var ready: [ClientReply] = []
    @exclusivity(unchecked) var rng: Xoshiro
    /// Server routing: which node coordinates each request.
    @exclusivity(unchecked) var choice: CoordinatorChoice
    /// The worker this client's thread runs (``ClusterOptions/hostWorkers``), booted on first use.
    var hosted: Worker?
    @exclusivity(unchecked) var hostedBooted = false

    init(id: Int, cluster: InProcessCluster) {
        self.id = id
        endpoint = .client(id)
        self.cluster = cluster
        let k = cluster.workerCount
        consumer = k + id
        workerCount = k
        ring = cluster.ring
        n = cluster.options.core.n
        inLanes = cluster.lanes[k + id]
        parker = cluster.parkers[k + id]
        router = Router(producer: k + id, options: cluster.options, lanes: cluster.lanes, parkers: cluster.parkers)
        rng = Xoshiro.derive(cluster.options.seed, 0x434C_4945 &+ UInt64(id))
        choice = CoordinatorChoice(nodes: cluster.options.core.nodes)
        coordinator = cluster.options.core.routing == .client
            ? Coordinator(endpoint: .client(id), config: cluster.options.core, ring: ring,
                          pool: cluster.options.pool)
            : nil
    }

    /// Submits a request; its reply comes back through ``poll(now:_:)`` with the request's tag.
    /// - Parameters:
    ///   - coordinatorNode: with server routing, the node to ask (nil: a random one).
    public func submit(_ request: ClientRequest, now: UInt64, coordinatorNode: Int? = nil) {
        if let coordinator {
            coordinator.start(request, from: endpoint, now: now, local: nil, out: &outbox)
            dispatch(now: now)
        } else {
            send(request, to: coordinatorNode ?? pickCoordinator(for: request.key, now: now), now: now)
        }
        router.flush()
    }

    func pickCoordinator(for key: UInt64, now: UInt64) -> Int {
        choice.pick(for: key, ring: ring, n: n, now: now, rng: &rng)
    }

    func send(_ request: ClientRequest, to node: Int?, now: UInt64) {
        guard let node else {
            // Every node it was sent to refused it: the request fails.
            if let v = request.value { cluster.options.pool.release(v) }
            choice.finished(request.tag)
            ready.append(ClientReply(tag: request.tag, op: request.op, key: request.key, status: .unavailable,
                                     coordinator: endpoint))
            return
        }
        let envelope = Envelope(from: endpoint, to: .node(node), message: .request(request))
        if let at = router.schedule(envelope, now: now) {
            router.push(Parcel(at: choice.arrival(at, to: node), envelope: envelope),
                        to: InProcessCluster.consumer(of: .node(node), workers: workerCount))
        }
    }

    /// Collects replies that have arrived (and runs the client-side coordinator); calls `body` for each.
    /// Returns how many replies were handed out.
    @discardableResult
    public func poll(now: UInt64, _ body: (ClientReply) -> Void) -> Int {
        serve(now: now)
        inLanes.forEach { lane in
            lane.drain { parcel in
                if parcel.at > now {
                    delayed.push(at: parcel.at, parcel.envelope)
                } else {
                    receive(parcel.envelope, now: now)
                }
            }
        }
        while let due = delayed.popDue(now) { receive(due.payload, now: now) }
        while let token = timers.popDue(now) {
            coordinator?.timerFired(token, now: now, local: nil, out: &outbox)
            dispatch(now: now)
        }
        router.flush()
        let n = ready.count
        for reply in ready { body(reply) }
        ready.emptyKeepingCapacity()
        return n
    }

    /// Sleeps until a reply may have arrived or until `deadline` (monotonic ns). Yields for a few microseconds
    /// first: under load a reply is usually that close, and a parked port costs the worker a futex wake. A hosting
    /// client also wakes for its worker's messages and timers (and returns at once while the worker is busy).
    public func wait(until deadline: UInt64) {
        let lanes = inLanes
        var d = min(deadline, delayed.nextTime ?? .max, timers.nextTime ?? .max)
        if let hosted {
            if serve(now: monotonicNanos()) { return }
            d = min(d, hosted.nextDeadline)
        }
        let hasWork = { [self] in !ready.isEmpty || lanes.contains { !$0.isEmpty } || hosted?.hasInput == true }
        let start = monotonicNanos()
        defer { idleNanos &+= monotonicNanos() &- start }
        let spinUntil = min(d, start &+ (hosted == nil ? ClientPort.spinNanos : ClientPort.hostedSpinNanos))
        while monotonicNanos() < spinUntil {
            if hasWork() { return }
            sched_yield()
        }
        parker.park(until: d, hasWork: hasWork)
    }

    /// Time this thread has spent in ``wait(until:)`` with nothing to do (its hosted worker idle too), ns.
    @exclusivity(unchecked) public private(set) var idleNanos: UInt64 = 0

    /// Whether this client's thread runs a worker (``ClusterOptions/hostWorkers``).
    public var hostsWorker: Bool { hosted != nil }

    /// A hosting client runs its worker once (booting it the first time); returns whether the worker had work.
    /// Without a hosted worker, does nothing.
    @discardableResult
    public func serve(now: UInt64) -> Bool {
        guard let hosted else { return false }
        if !hostedBooted {
            hostedBooted = true
            hosted.boot(now: now)
        }
        return hosted.step(now: now)
    }

    /// Nothing to send or collect until `deadline`: a hosting client keeps its worker running meanwhile (other
    /// clients' requests may need it); any other client sleeps.
    public func idle(until deadline: UInt64) {
        guard hosted != nil else { return sleep(until: deadline) }
        while monotonicNanos() < deadline { wait(until: deadline) }  // wait runs the worker first
    }

    /// This client is done. A hosting client keeps running its worker until every client is done (until
    /// ``InProcessCluster/stop()`` at the latest): the others' requests may still need its nodes.
    public func finish() {
        guard hosted != nil else { return }
        cluster.finishedClients.add(1, ordering: .acquiringAndReleasing)
        cluster.wakeAll()
        while cluster.finishedClients.load(ordering: .acquiring) < cluster.ports.count
            && cluster.running.load(ordering: .relaxed)
        {
            idle(until: monotonicNanos() &+ 1_000_000)
        }
        cluster.wakeAll()
    }

    /// How long ``wait(until:)`` yields before it parks.
    /// (A hosting client yields ten times longer: it has a core to itself, and parking costs the other thread a
    /// futex wake for each message it sends this one; 200 µs did 275k ops/s where 20 µs did 253k, median of 5.)
    static let spinNanos: UInt64 = 20_000
    static let hostedSpinNanos: UInt64 = 200_000


    func receive(_ envelope: Envelope, now: UInt64) {
        if let coordinator, !envelope.from.isClient { coordinator.detector.heard(from: envelope.from.index) }
        switch envelope.message {
        case .reply(let reply):
            choice.finished(reply.tag)
            ready.append(reply)
        case .request(let request) where coordinator == nil && !envelope.from.isClient:
            // Refused by a down node: another coordinator, or the request fails.
            send(request, to: choice.refused(request.tag, key: request.key, by: envelope.from.index, ring: ring,
                                             n: n, now: now, rng: &rng), now: now)
        case .writeAck(let ack):
            coordinator?.writeAcked(ack, from: envelope.from, now: now, out: &outbox)
            dispatch(now: now)
        case .readResponse(let response):
            if let coordinator {
                coordinator.readAnswered(response, from: envelope.from, now: now, out: &outbox)
                dispatch(now: now)
            } else {
                envelope.message.release(to: cluster.options.pool)
            }
        default:
            envelope.message.release(to: cluster.options.pool)
        }
    }

    func dispatch(now: UInt64) {
        for envelope in outbox.messages {
            if envelope.to == endpoint, case .reply(let reply) = envelope.message {
                ready.append(reply)
                continue
            }
            guard let at = router.schedule(envelope, now: now) else { continue }
            router.push(Parcel(at: at, envelope: envelope),
                        to: InProcessCluster.consumer(of: envelope.to, workers: workerCount))
        }
        for t in outbox.timers { timers.push(at: t.at, t.token) }
        outbox.removeAll()
    }

    func discardInFlight() {
        while let e = delayed.popFirst() { e.payload.message.release(to: cluster.options.pool) }
        for r in ready { Siblings.release(r.versions, pool: cluster.options.pool) }
        ready.removeAll()
        router.discardOverflow()
        coordinator?.abandonAll()
    }
}
