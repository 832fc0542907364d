import BufferPool
import Foundation
import ReplicationCore
import Synchronization
import SyncPrimitives

/// One-way delays per message kind, from `--delay`, `--delay-client`, `--delay-write`, `--delay-write-ack`,
/// `--delay-read`, `--delay-read-response`.
public struct Delays: Sendable, Equatable {
    /// Indexed by `MessageKind.rawValue`; nil: no delay.
    public var byKind: [Distribution?]

    public init(
        all: Distribution? = nil, client: Distribution? = nil, write: Distribution? = nil,
        writeAck: Distribution? = nil, read: Distribution? = nil, readResponse: Distribution? = nil
    ) {
        byKind = [client, write ?? all, writeAck ?? all, read ?? all, readResponse ?? all]
    }

    public static let none = Delays()
    public var isEmpty: Bool { byKind.allSatisfy { $0 == nil } }
    public subscript(kind: MessageKind) -> Distribution? { byKind[kind.rawValue] }
}

/// How an in-process cluster runs.
public struct ClusterOptions: Sendable {
    public var core: CoreConfig
    /// Worker threads; nodes are spread over them (node i on worker i mod K).
    public var workers: Int
    /// Client ports (one per load-generator thread).
    public var clients: Int
    public var delays: Delays
    /// Probability that a message between nodes (or between a client-side coordinator and a replica) is lost.
    public var drop: Double
    /// When set, `drop` applies only once it is opened (the load generator opens it when its records are loaded);
    /// nil: from the start.
    public var dropGate: Gate?
    public var seed: UInt64
    /// Slots of each single-producer lane.
    public var laneCapacity: Int
    public var pool: BufferPool
    /// The nodes' fault conditions, when the run injects faults (nil: none, and no cost).
    public var faults: FaultState?
    /// Test hook: called (on the node's worker) when a node is wiped, with every version it held, data and hints.
    public var onWipe: (@Sendable (_ node: Int, _ versions: [Version]) -> Void)?
    /// Run worker i on client i's thread, inside its ``ClientPort/poll(now:_:)`` and ``ClientPort/wait(until:)``,
    /// instead of on a thread of its own (taken when there are as many clients as workers). Every client thread
    /// must then call ``ClientPort/finish()`` when it is done. On a machine with as many cores as workers this keeps
    /// one busy thread per core, where workers and clients on separate threads would take turns on the cores.
    public var hostWorkers = false

    /// Whether workers are hosted by clients: asked for, and as many clients as workers (one per node at most).
    public var hostsWorkers: Bool { hostWorkers && clients == min(workers, core.nodes) }

    public init(
        core: CoreConfig = CoreConfig(), workers: Int = ProcessInfo.processInfo.activeProcessorCount,
        clients: Int = 1, delays: Delays = .none, drop: Double = 0, seed: UInt64 = 1, laneCapacity: Int = 4096,
        pool: BufferPool = .shared, faults: FaultState? = nil
    ) {
        self.core = core
        self.workers = max(1, workers)
        self.clients = clients
        self.delays = delays
        self.drop = drop
        self.seed = seed
        self.laneCapacity = laneCapacity
        self.pool = pool
        self.faults = faults
    }
}

/// A switch other threads read: closed until some thread opens it, once.
public final class Gate: Sendable {
    let opened = Atomic<Bool>(false)
    public init() {}
    public func open() { opened.store(true, ordering: .releasing) }
    @inline(__always) public var isOpen: Bool { opened.load(ordering: .relaxed) }
}

/// A message in flight between threads, with the time it may be delivered.
struct Parcel {
    var at: UInt64
    var envelope: Envelope
}

/// A timer a node (or client-side coordinator) asked for.
struct TimerRequest {
    var node: Int
    var token: UInt64
}

/// M nodes on K worker threads in one process.
///
/// How shared state is synchronized:
/// - A node's state (store, coordinator, counters) is touched only by the worker thread that owns it.
/// - Messages cross threads through one bounded single-producer/single-consumer ring per (producer, consumer)
///   pair: each consumer's lanes together form its lock-free multi-producer, single-consumer inbox, drained in
///   batches. Producers publish a batch with one release store and wake a sleeping consumer through its
///   ``Parker`` (which takes a lock only when the consumer actually sleeps).
/// - Delays and timers live in a heap owned by the consuming thread; loss is decided by the sender's own
///   generator. No lock is taken per request.
/// - Faults: a ``FaultState`` of per-node atomics written by the fault controller; routers read it (relaxed) for
///   partitions and slow nodes; each worker notices a new epoch and applies it to its own nodes (crash, wipe, boot,
///   stall, resume), so a node's state is still touched by its worker only.
/// - `running` is an atomic flag; counters are read only after ``stop()``.
public final class InProcessCluster: @unchecked Sendable {
    public let options: ClusterOptions
    public let ring: Ring
    public let nodes: [Node]
    public private(set) var ports: [ClientPort] = []
    let workers: [Worker]
    /// lanes[consumer][producer]; consumers and producers are workers 0..<K, then ports K..<K+P.
    let lanes: [[SPSCRing<Parcel>]]
    let parkers: [Parker]
    let running = Atomic<Bool>(false)
    /// Whether worker i runs on client i's thread (``ClusterOptions/hostWorkers``).
    public let hosted: Bool
    /// Hosting clients that have called ``ClientPort/finish()``.
    let finishedClients = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false
    private var stopped = false

    public init(options: ClusterOptions) {
        precondition(options.core.problem == nil, options.core.problem ?? "")
        self.options = options
        let ring = options.core.makeRing()
        self.ring = ring
        nodes = (0..<options.core.nodes).map {
            Node(id: $0, config: options.core, ring: ring, pool: options.pool)
        }
        let k = min(options.workers, options.core.nodes)
        let parties = k + options.clients
        let hosted = options.hostsWorkers
        self.hosted = hosted
        lanes = (0..<parties).map { _ in (0..<parties).map { _ in SPSCRing<Parcel>(capacity: options.laneCapacity) } }
        // A hosting client sleeps for its worker too: one parker, woken by messages to either.
        var ps = (0..<k).map { _ in Parker() }
        ps += (0..<options.clients).map { hosted ? ps[$0] : Parker() }
        parkers = ps
        var ws: [Worker] = []
        for i in 0..<k {
            ws.append(Worker(index: i, workerCount: k, options: options, nodes: nodes, lanes: lanes, parkers: ps))
        }
        workers = ws
        for w in workers { w.cluster = self }
        ports = (0..<options.clients).map { ClientPort(id: $0, cluster: self) }
        if hosted { for (p, w) in zip(ports, workers) { p.hosted = w } }
    }

    /// The worker that owns node `i` (a client's port: after the workers), with `workers` workers. Static: a call on
    /// the cluster, which every thread shares, retained and released it, its reference count one cache line that
    /// every thread wrote, once per message.
    @inline(__always)
    static func consumer(of endpoint: Endpoint, workers: Int) -> Int {
        endpoint.isClient ? workers + endpoint.index : endpoint.index % workers
    }

    public var workerCount: Int { workers.count }

    /// Starts the worker threads (with hosted workers, none: the clients' threads run them).
    public func start() {
        precondition(!started, "a cluster starts once")
        started = true
        running.store(true, ordering: .releasing)
        if hosted { return }
        for w in workers {
            let thread = Thread { [w, finished] in
                w.run()
                finished.signal()
            }
            thread.name = "quorumbench-worker-\(w.index)"
            thread.start()
        }
    }

    /// Stops the workers and waits for them; messages still in flight are discarded (their buffers released).
    /// With hosted workers, call it once the client threads have returned from ``ClientPort/finish()``.
    public func stop() {
        guard started, !stopped else { return }
        stopped = true
        running.store(false, ordering: .releasing)
        for p in parkers { p.unpark() }
        for w in workers where !hosted {
            _ = w
            while finished.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
                for p in parkers { p.unpark() }
            }
        }
        for w in workers { w.discardInFlight() }
        for p in ports { p.discardInFlight() }
        for consumerLanes in lanes {
            for lane in consumerLanes { lane.drain { $0.envelope.message.release(to: options.pool) } }
        }
    }

    deinit { stop() }

    /// Everything the nodes and client-side coordinators counted (read after ``stop()``).
    public var counters: CoreCounters {
        var c = CoreCounters()
        for n in nodes { c.add(n.counters) }
        for p in ports { if let co = p.coordinator { c.add(co.counters) } }
        return c
    }

    /// Messages lost to `--drop`.
    public var droppedMessages: Int {
        workers.reduce(0) { $0 + $1.router.dropped } + ports.reduce(0) { $0 + $1.router.dropped }
    }

    /// After ``stop()``: how far the replicas disagree (``Quiescence/divergence(of:ring:n:)``).
    public func divergence() -> (keys: Set<UInt64>, trees: Int) { Quiescence.divergence(of: nodes, ring: ring, n: options.core.n) }

    /// Wakes every worker (after a change of faults).
    public func wakeAll() { for p in parkers { p.unpark() } }

    /// Messages lost to partitions.
    public var partitionedMessages: Int { workers.reduce(0) { $0 + $1.router.partitioned } }

    /// After ``stop()``: faults heal and repair runs to completion (``Quiescence/settle(_:core:pool:maxRounds:)``).
    @discardableResult
    public func settle(maxRounds: Int = 50) -> Int {
        precondition(stopped, "settle after stop()")
        return Quiescence.settle(nodes, core: options.core, pool: options.pool, now: monotonicNanos(), maxRounds: maxRounds)
    }
}

/// Sends envelopes from one producer thread: loss, delay, and the lane to each consumer.
struct Router {
    let producer: Int
    let options: ClusterOptions
    let transmission: Transmission
    /// ``ClusterOptions/dropGate`` when there is something to drop: no loss until it opens.
    let lossGate: Gate?
    /// This producer's lane to each consumer, and the consumers' parkers, looked up once (constants, like a
    /// worker's ``Worker/nodes``).
    let outLanes: Unretained<SPSCRing<Parcel>>
    let parkers: Unretained<Parker>
    var rng: Xoshiro
    var dirty: [Bool]
    var dirtyList: [Int] = []
    var overflow: [[Parcel]]
    var dropped = 0
    /// Messages lost to a partition.
    var partitioned = 0

    /// `lanes[c][p]`: the lane from producer p to consumer c.
    init(producer: Int, options: ClusterOptions, lanes: [[SPSCRing<Parcel>]], parkers: [Parker]) {
        let parties = lanes.count
        self.producer = producer
        self.options = options
        outLanes = Unretained(lanes.map { $0[producer] })
        self.parkers = Unretained(parkers)
        transmission = Transmission(drop: options.drop, delays: options.delays,
                                    slowDelays: options.faults?.slowDelays ?? [])
        lossGate = options.drop > 0 ? options.dropGate : nil
        rng = Xoshiro.derive(options.seed, 0x524F_5554 &+ UInt64(producer))
        dirty = Array(repeating: false, count: parties)
        overflow = Array(repeating: [], count: parties)
    }

    /// The delivery time of `envelope` sent at `now`, or nil if it is lost.
    @inline(__always)
    mutating func schedule(_ envelope: Envelope, now: UInt64) -> UInt64? {
        switch transmission.fate(of: envelope, now: now, rng: &rng, conditions: options.faults,
                                 dropping: lossGate?.isOpen != false) {
        case .deliver(let at): return at
        case .dropped: dropped += 1
        case .partitioned: partitioned += 1
        }
        envelope.message.release(to: options.pool)
        return nil
    }

    /// Puts a parcel in `consumer`'s lane from this producer (or in the overflow if the lane is full).
    @inline(__always)
    mutating func push(_ parcel: consuming Parcel, to consumer: Int) {
        if overflow[consumer].isEmpty {
            // A full lane hands the parcel back: it waits in the overflow.
            var moving: Parcel? = parcel
            if let refused = outLanes.with(consumer, { $0.push(moving.take()!) }) {
                overflow[consumer].append(refused)
            }
        } else {
            overflow[consumer].append(parcel)
        }
        if !dirty[consumer] {
            dirty[consumer] = true
            dirtyList.append(consumer)
        }
    }

    /// Publishes what was pushed since the last flush and wakes the consumers. Returns false if some parcels are
    /// still waiting for room.
    @discardableResult
    mutating func flush() -> Bool {
        var pending = false
        var stillDirty: [Int] = []
        for consumer in dirtyList {
            outLanes.with(consumer) { lane in
                if !overflow[consumer].isEmpty {
                    var moved = 0
                    for parcel in overflow[consumer] {
                        if lane.push(parcel) != nil { break }
                        moved += 1
                    }
                    overflow[consumer].removeFirst(moved)
                }
                lane.publish()
            }
            parkers.with(consumer) { $0.unpark() }
            if overflow[consumer].isEmpty {
                dirty[consumer] = false
            } else {
                pending = true
                stillDirty.append(consumer)
            }
        }
        dirtyList = stillDirty
        return !pending
    }

    func discardOverflow() {
        for list in overflow { for p in list { p.envelope.message.release(to: options.pool) } }
    }
}

/// A worker thread: owns the nodes `i` with `i mod K == index`, drains its lanes, runs its timers and delays.
final class Worker: @unchecked Sendable {
    let index: Int
    let workerCount: Int
    let options: ClusterOptions
    unowned(unsafe) var cluster: InProcessCluster!
    /// The cluster's nodes, called once per message (``Unretained``). A constant: read out of a `var`, the value
    /// was copied for each call, its array retained and released around it.
    let nodes: Unretained<Node>
    /// This worker's inbox: a lane from every producer.
    let inLanes: [SPSCRing<Parcel>]
    @exclusivity(unchecked) var router: Router
    /// Messages whose delivery time has not come.
    @exclusivity(unchecked) var delayed = TimerHeap<Envelope>()
    @exclusivity(unchecked) var timers = TimerQueue<TimerRequest>()
    @exclusivity(unchecked) var local: [Envelope] = []
    @exclusivity(unchecked) var localNext: [Envelope] = []
    @exclusivity(unchecked) var outbox = Outbox()
    /// Faults: the conditions this worker has applied to its nodes, by node id, and what waits for a stalled node.
    @exclusivity(unchecked) var applied: [NodeCondition] = []
    @exclusivity(unchecked) var seenEpoch: UInt64 = 0
    @exclusivity(unchecked) var held: [Int: [Envelope]] = [:]
    @exclusivity(unchecked) var heldTimers: [Int: [UInt64]] = [:]

    /// How long an idle worker yields before it parks.
    /// (0 µs to 500 µs made no difference beyond noise with 2 load threads and 2 workers on 2 cores.)
    static let spinNanos: UInt64 = 20_000

    init(index: Int, workerCount: Int, options: ClusterOptions, nodes: [Node], lanes: [[SPSCRing<Parcel>]],
         parkers: [Parker]) {
        self.index = index
        self.workerCount = workerCount
        self.options = options
        self.nodes = Unretained(nodes)
        inLanes = lanes[index]
        router = Router(producer: index, options: options, lanes: lanes, parkers: parkers)
    }

    /// Boots this worker's nodes: the first thing its thread does.
    func boot(now: UInt64) {
        applied = Array(repeating: NodeCondition(), count: nodes.count)
        for node in stride(from: index, to: nodes.count, by: workerCount) {
            nodes.with(node) { $0.boot(now: now, out: &outbox) }
            dispatch(from: node, now: now)
        }
    }

    func run() {
        let parker = cluster.parkers[index]
        var idleSince: UInt64 = 0
        boot(now: monotonicNanos())
        while cluster.running.load(ordering: .relaxed) {
            let now = monotonicNanos()
            if step(now: now) {
                idleSince = 0
                continue
            }
            // Idle: yield for a while (a request usually follows soon under load), then sleep until a producer
            // wakes us or the next timer or delayed message is due.
            if idleSince == 0 { idleSince = now }
            if now &- idleSince < Worker.spinNanos {
                sched_yield()
                continue
            }
            let deadline = min(nextDeadline, now &+ 50_000_000)
            if deadline > now {
                parker.park(until: deadline) { [self] in hasInput }
            }
            idleSince = 0
        }
    }

    /// One round: applies new faults, drains the lanes, delivers what is due, runs due timers, publishes what the
    /// nodes sent. Returns whether there was anything to do (or output still waiting for room in a lane).
    @discardableResult
    func step(now: UInt64) -> Bool {
        var work = 0
        if let faults = options.faults, faults.epoch.load(ordering: .acquiring) != seenEpoch {
            applyFaults(faults, now: now)
        }
        for lane in inLanes {
            work += lane.drain { parcel in
                if parcel.at > now {
                    delayed.push(at: parcel.at, parcel.envelope)
                } else {
                    deliver(parcel.envelope, now: now)
                }
            }
        }
        while let due = delayed.popDue(now) {
            work += 1
            deliver(due.payload, now: now)
        }
        while let t = timers.popDue(now) {
            work += 1
            if options.faults != nil {
                let c = applied[t.node]
                if c.down { continue }
                if c.stalled {
                    heldTimers[t.node, default: []].append(t.token)
                    continue
                }
            }
            nodes.with(t.node) { $0.timer(t.token, now: now, out: &outbox) }
            dispatch(from: t.node, now: now)
        }
        while !local.isEmpty {
            swap(&local, &localNext)
            for envelope in localNext { deliver(envelope, now: now) }
            work += localNext.count
            localNext.emptyKeepingCapacity()
        }
        let flushed = router.flush()
        return work > 0 || !flushed
    }

    /// Whether a message waits in a lane.
    var hasInput: Bool { inLanes.contains { !$0.isEmpty } }

    /// When the next delayed message or timer is due.
    var nextDeadline: UInt64 { min(delayed.nextTime ?? .max, timers.nextTime ?? .max) }

    @inline(__always)
    func deliver(_ envelope: Envelope, now: UInt64) {
        let node = envelope.to.index
        guard !envelope.to.isClient, node < nodes.count, node % workerCount == index else {
            envelope.message.release(to: options.pool)
            return
        }
        if options.faults != nil {
            let c = applied[node]
            if c.down {
                // Nobody is listening. A client's request is refused at once, as a closed port would be, so the
                // client can try another coordinator; anything else is lost.
                if case .request = envelope.message, envelope.from.isClient {
                    outbox.send(envelope.message, from: envelope.to, to: envelope.from)
                    dispatch(from: node, now: now)
                } else {
                    envelope.message.release(to: options.pool)
                }
                return
            }
            if c.stalled {
                held[node, default: []].append(envelope)
                return
            }
        }
        // The cluster keeps its nodes alive for as long as the workers run: no retain per message.
        nodes.with(node) { $0.handle(envelope, now: now, out: &outbox) }
        dispatch(from: node, now: now)
    }

    /// Routes what a node asked for: messages to their consumers (or this worker's local queue), timers here.
    @inline(__always)
    func dispatch(from node: Int, now: UInt64) {
        outbox.messages.drain { envelope in
            guard let at = router.schedule(envelope, now: now) else { return }
            let consumer = InProcessCluster.consumer(of: envelope.to, workers: workerCount)
            if consumer == index {
                if at <= now { local.append(envelope) } else { delayed.push(at: at, envelope) }
            } else {
                router.push(Parcel(at: at, envelope: envelope), to: consumer)
            }
        }
        for t in outbox.timers { timers.push(at: t.at, TimerRequest(node: node, token: t.token)) }
        outbox.timers.emptyKeepingCapacity()
    }

    /// Applies the fault controller's latest conditions to this worker's nodes.
    func applyFaults(_ faults: FaultState, now: UInt64) {
        seenEpoch = faults.epoch.load(ordering: .acquiring)
        for node in stride(from: index, to: nodes.count, by: workerCount) {
            let new = faults.condition(node), old = applied[node]
            applied[node] = new
            if new.down && !old.down {
                for e in held.removeValue(forKey: node) ?? [] { e.message.release(to: options.pool) }
                heldTimers[node] = nil
                nodes.with(node) { $0.fail(faults.crashMode, onWipe: options.onWipe) }
            } else if !new.down && old.down {
                nodes.with(node) { $0.boot(now: now, out: &outbox) }
                dispatch(from: node, now: now)
            }
            if !new.down && !new.stalled && old.stalled {
                // Resumed: what waited is handled now, in order.
                for token in heldTimers.removeValue(forKey: node) ?? [] {
                    nodes.with(node) { $0.timer(token, now: now, out: &outbox) }
                    dispatch(from: node, now: now)
                }
                for e in held.removeValue(forKey: node) ?? [] { deliver(e, now: now) }
            }
        }
    }

    func discardInFlight() {
        for (_, list) in held { for e in list { e.message.release(to: options.pool) } }
        held.removeAll()
        while let e = delayed.popFirst() { e.payload.message.release(to: options.pool) }
        for e in local { e.message.release(to: options.pool) }
        local.removeAll()
        router.discardOverflow()
        for node in cluster.nodes where node.id % workerCount == index { node.coordinator.abandonAll() }
    }
}
