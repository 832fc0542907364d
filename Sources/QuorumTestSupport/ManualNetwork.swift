import BufferPool
import ReplicationCore
import SyncPrimitives

/// A hand-driven network of nodes for tests: messages wait until a test delivers them (in order, or only some,
/// or dropped), and time moves only when the test advances it. The nodes are the real state machines.
public final class ManualNetwork {
    public let config: CoreConfig
    public let ring: Ring
    public let nodes: [Node]
    public let pool: BufferPool
    public private(set) var now: UInt64 = 1_000_000
    /// Messages sent and not yet delivered, oldest first.
    public var inFlight: [Envelope] = []
    /// Replies that reached clients.
    public var replies: [ClientReply] = []
    /// Nodes that are down: messages to them are lost and their timers do not fire.
    public var down: Set<Int> = []
    var timers = TimerHeap<(node: Int, token: UInt64)>()
    var outbox = Outbox()
    /// An outbox a test hands to a node method directly; ``flushScratch(from:)`` sends what it holds.
    public var scratch = Outbox()
    var nextTag: UInt64 = 1

    public init(config: CoreConfig, pool: BufferPool = .shared) {
        self.config = config
        self.pool = pool
        let ring = config.makeRing()
        self.ring = ring
        nodes = (0..<config.nodes).map { Node(id: $0, config: config, ring: ring, pool: pool) }
    }

    /// Sends a client request to `node` (not yet delivered); returns its tag.
    @discardableResult
    public func submit(_ op: Operation, key: UInt64, value: PoolBuffer? = nil, context: CausalContext = .empty,
                       to node: Int, client: Int = 0) -> UInt64 {
        let tag = nextTag
        nextTag += 1
        inFlight.append(Envelope(from: .client(client), to: .node(node),
                                 message: .request(ClientRequest(tag: tag, op: op, key: key, value: value,
                                                                 context: context))))
        return tag
    }

    /// Delivers messages, oldest first, until none is left; a message `keep` rejects is dropped.
    public func deliverAll(keep: (Envelope) -> Bool = { _ in true }) {
        while !inFlight.isEmpty {
            let e = inFlight.removeFirst()
            deliver(e, keep: keep)
        }
    }

    /// Delivers only the messages `select` picks (in order); the others stay in flight.
    public func deliver(where select: (Envelope) -> Bool) {
        var rest: [Envelope] = []
        let batch = inFlight
        inFlight = []
        for e in batch {
            if select(e) { deliver(e, keep: { _ in true }) } else { rest.append(e) }
        }
        inFlight = rest + inFlight
    }

    func deliver(_ e: Envelope, keep: (Envelope) -> Bool) {
        guard keep(e), e.to.isClient || !down.contains(e.to.index) else {
            e.message.release(to: pool)
            return
        }
        if e.to.isClient {
            if case .reply(let r) = e.message { replies.append(r) } else { e.message.release(to: pool) }
            return
        }
        let node = nodes[e.to.index]
        node.handle(e, now: now, out: &outbox)
        collect(from: node.id)
    }

    func collect(from node: Int) {
        inFlight.append(contentsOf: outbox.messages)
        for t in outbox.timers { timers.push(at: t.at, (node, t.token)) }
        outbox.removeAll()
    }

    /// Moves time forward, firing the timers that come due (and delivering nothing).
    public func advance(by ns: UInt64) {
        now += ns
        while let t = timers.popDue(now) {
            if down.contains(t.payload.node) { continue }
            nodes[t.payload.node].timer(t.payload.token, now: now, out: &outbox)
            collect(from: t.payload.node)
        }
    }

    /// Puts what a test's direct call to node `i` left in ``scratch`` in flight.
    public func flushScratch(from i: Int) {
        inFlight.append(contentsOf: scratch.messages)
        for t in scratch.timers { timers.push(at: t.at, (i, t.token)) }
        scratch.removeAll()
    }

    /// Starts every node's periodic work (hinted handoff, anti-entropy).
    public func bootAll() {
        for node in nodes {
            node.boot(now: now, out: &outbox)
            collect(from: node.id)
        }
    }

    /// Lets time pass in steps, delivering everything in flight after each (timers fire as they come due).
    public func run(for ns: UInt64, step: UInt64 = 1_000_000) {
        let end = now + ns
        deliverAll()
        while now < end {
            advance(by: step)
            deliverAll()
        }
    }

    /// Takes node `i` down (`wipe`: it loses its data and comes back under a new incarnation).
    public func crash(_ i: Int, wipe: Bool = false) {
        down.insert(i)
        nodes[i].crash(wipe: wipe)
    }

    /// Brings node `i` back.
    public func restart(_ i: Int) {
        down.remove(i)
        nodes[i].boot(now: now, out: &outbox)
        collect(from: i)
    }

    /// Takes the reply with `tag`, if it arrived.
    public func reply(_ tag: UInt64) -> ClientReply? {
        guard let i = replies.firstIndex(where: { $0.tag == tag }) else { return nil }
        return replies.remove(at: i)
    }

    /// The replicas of `key`.
    public func replicas(of key: UInt64) -> [Int] {
        ring.preferenceList(for: Key(key)).replicas(config.n).map { Int($0) }
    }

    /// The write ids in each replica's state of `key`, by replica.
    public func stateIDs(of key: UInt64) -> [[UInt64]] {
        replicas(of: key).map { nodes[$0].store.state(of: key).compactMap(WriteTag.id(of:)).sorted() }
    }

    /// Drops everything in flight and pending replies, releasing their buffers.
    public func discardAll() {
        for e in inFlight { e.message.release(to: pool) }
        inFlight.removeAll()
        for r in replies { Siblings.release(r.versions, pool: pool) }
        replies.removeAll()
    }
}
