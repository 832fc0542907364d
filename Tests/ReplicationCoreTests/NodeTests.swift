import BufferPool
import QuorumTestSupport
import Testing
@testable import ReplicationCore

func config(nodes: Int = 5, n: Int = 3, w: Int = 2, r: Int = 2, versioning: Versioning = .vv) -> CoreConfig {
    var c = CoreConfig()
    c.nodes = nodes
    c.n = n
    c.w = w
    c.r = r
    c.versioning = versioning
    return c
}

/// A key whose replicas include node 0 (so node 0 coordinates as a replica).
func key(replicatedOn node: Int, in net: ManualNetwork, avoiding other: Int? = nil) -> UInt64 {
    var k: UInt64 = 1
    while true {
        let reps = net.replicas(of: k)
        if reps.contains(node) && (other == nil || !reps.contains(other!)) { return k }
        k += 1
    }
}

@Suite("Coordinator and replicas")
struct NodeTests {
    @Test("a put acknowledged by w replicas is read back by r")
    func putGet() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(), pool: pool)
        let k = key(replicatedOn: 0, in: net)
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 42, pool: pool), to: 0)
        net.deliverAll()
        #expect(net.reply(put)?.status == .ok)
        #expect(net.stateIDs(of: k) == [[42], [42], [42]])
        let get = net.submit(.get, key: k, to: 3)
        net.deliverAll()
        let reply = net.reply(get)!
        #expect(reply.status == .ok)
        #expect(reply.versions.compactMap(WriteTag.id(of:)) == [42])
        Siblings.release(reply.versions, pool: pool)
        net.discardAll()
    }

    @Test("a node that does not store the key forwards a write to the key's first replica, which coordinates it")
    func forwarding() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(), pool: pool)
        let k = key(replicatedOn: 1, in: net, avoiding: 0)
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 5, pool: pool), to: 0)
        net.deliverAll()
        let reply = net.reply(put)!
        #expect(reply.status == .ok)
        #expect(reply.coordinator == .node(net.replicas(of: k)[0]))
        #expect(reply.dot.map { !$0.actor.isLoose && $0.actor.node == net.replicas(of: k)[0] } == true)
        #expect(net.nodes[0].counters.forwarded == 1)
        #expect(net.stateIDs(of: k) == [[5], [5], [5]])
        // A read through the same non-replica node asks the replicas itself.
        let get = net.submit(.get, key: k, to: 0)
        net.deliverAll()
        #expect(net.reply(get)?.versions.compactMap(WriteTag.id(of:)) == [5])
        net.discardAll()
    }

    @Test("concurrent writes become siblings under vv; a write with their context replaces both")
    func siblingsUnderVV() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(), pool: pool)
        let k = key(replicatedOn: 0, in: net)
        let other = net.replicas(of: k).first { $0 != 0 }!
        net.submit(.put, key: k, value: WriteTag.value(id: 1, pool: pool), to: 0)
        net.submit(.put, key: k, value: WriteTag.value(id: 2, pool: pool), to: other)
        net.deliverAll()
        let get = net.submit(.get, key: k, to: 0)
        net.deliverAll()
        let reply = net.reply(get)!
        #expect(Set(reply.versions.compactMap(WriteTag.id(of:))) == [1, 2])
        #expect(net.stateIDs(of: k).allSatisfy { $0 == [1, 2] })
        Siblings.release(reply.versions, pool: pool)
        // A client that saw both writes resolves them.
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 3, pool: pool), context: reply.context, to: 4)
        net.deliverAll()
        #expect(net.reply(put)?.status == .ok)
        #expect(net.stateIDs(of: k).allSatisfy { $0 == [3] })
        net.discardAll()
    }

    @Test("max siblings: the coordinating replica refuses a write past the limit at once; one with the context resolves")
    func siblingLimitAtCoordinator() {
        let pool = BufferPool()
        var c = config()
        c.maxSiblings = 3
        let net = ManualNetwork(config: c, pool: pool)
        let k = key(replicatedOn: 0, in: net)
        for id in 1...4 as ClosedRange<UInt64> {
            net.submit(.put, key: k, value: WriteTag.value(id: id, pool: pool), to: 0)
            net.deliverAll()
        }
        // Blind writes, each a sibling: the fourth would make four.
        #expect(net.replies.map(\.status) == [.ok, .ok, .ok, .rejected])
        #expect(net.replies.last?.dot == nil && net.replies.last?.isHeldNowhere == true)  // refused before it had a dot
        #expect(net.stateIDs(of: k).allSatisfy { $0 == [1, 2, 3] })
        #expect(net.nodes[0].counters.rejected == 1 && net.nodes[0].counters.failed == 1)
        #expect(net.nodes.allSatisfy { $0.counters.writesRejected == 0 })  // nothing was sent
        let get = net.submit(.get, key: k, to: 0)
        net.deliverAll()
        let read = net.reply(get)!
        Siblings.release(read.versions, pool: pool)
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 5, pool: pool), context: read.context, to: 0)
        net.deliverAll()
        #expect(net.reply(put)?.status == .ok)
        #expect(net.stateIDs(of: k).allSatisfy { $0 == [5] })
        net.discardAll()
    }

    @Test("max siblings: replicas refuse, and the client hears once w can no longer be reached, not at the timeout")
    func siblingLimitAtReplicas() {
        let pool = BufferPool()
        var c = config()
        c.maxSiblings = 2
        let net = ManualNetwork(config: c, pool: pool)
        let k = key(replicatedOn: 0, in: net)
        let others = net.replicas(of: k).filter { $0 != 0 }
        // Each other replica takes two blind writes of its own, which reach no one else: full there, empty on 0.
        var id: UInt64 = 0
        for b in others {
            for _ in 0..<2 {
                id += 1
                net.submit(.put, key: k, value: WriteTag.value(id: id, pool: pool), to: b)
                net.deliverAll(keep: { $0.to.isClient || $0.to == .node(b) })
            }
        }
        #expect(net.stateIDs(of: k).map(\.count).sorted() == [0, 2, 2])
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 99, pool: pool), to: 0)
        net.deliverAll()
        // Node 0 took it (its own copy counts as one ack); both others refused: w = 2 is out of reach.
        let reply = net.reply(put)
        #expect(reply?.status == .rejected)
        #expect(reply?.dot != nil && reply?.isHeldNowhere == false)  // node 0 holds it: the reply names the write
        #expect(net.nodes[0].counters.rejected == 1)
        #expect(others.map { net.nodes[$0].counters.writesRejected } == [1, 1])
        #expect(net.nodes[0].store.state(of: k).count == 1)
        // Read repair is not refused: it only passes on versions some replica already took.
        let get = net.submit(.get, key: k, to: 0)
        net.deliverAll()
        if let read = net.reply(get) { Siblings.release(read.versions, pool: pool) }
        #expect(net.stateIDs(of: k).map(\.count) == [5, 5, 5], "\(net.stateIDs(of: k))")
        net.discardAll()
    }

    @Test("concurrent writes leave one survivor under lww: the later timestamp")
    func oneSurvivorUnderLWW() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(versioning: .lww), pool: pool)
        let k = key(replicatedOn: 0, in: net)
        let other = net.replicas(of: k).first { $0 != 0 }!
        net.submit(.put, key: k, value: WriteTag.value(id: 1, pool: pool), to: 0)
        net.advance(by: 1000)
        net.submit(.put, key: k, value: WriteTag.value(id: 2, pool: pool), to: other)
        net.deliverAll()
        #expect(net.stateIDs(of: k).allSatisfy { $0 == [2] })
        net.discardAll()
    }

    @Test("read repair makes diverged replicas equal")
    func readRepair() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(w: 1, r: 1), pool: pool)
        let k = key(replicatedOn: 0, in: net)
        // The write reaches only node 0 (its own replica); the others never get it.
        net.submit(.put, key: k, value: WriteTag.value(id: 7, pool: pool), to: 0)
        net.deliverAll(keep: { e in if case .write = e.message { return false } else { return true } })
        #expect(net.stateIDs(of: k).filter { $0 == [7] }.count == 1)
        let get = net.submit(.get, key: k, to: 0)
        net.deliverAll()
        #expect(net.reply(get)?.status == .ok)
        #expect(net.stateIDs(of: k) == [[7], [7], [7]])
        #expect(net.nodes[0].counters.readRepairs == 2)
        net.discardAll()
    }

    @Test("digest reads: a replica holding what the coordinator holds answers `same`, one that differs sends its versions")
    func digestReads() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(w: 3, r: 3), pool: pool)
        let k = key(replicatedOn: 0, in: net)
        let reps = net.replicas(of: k)
        let other = reps.first { $0 != 0 }!
        func same() -> Int { net.nodes.reduce(0) { $0 + $1.counters.readsSame } }
        func read(at node: Int) -> [UInt64] {
            let tag = net.submit(.get, key: k, to: node)
            net.deliverAll()
            let reply = net.reply(tag)!
            #expect(reply.status == .ok)
            defer { Siblings.release(reply.versions, pool: pool) }
            return reply.versions.compactMap(WriteTag.id(of:)).sorted()
        }
        net.submit(.put, key: k, value: WriteTag.value(id: 7, pool: pool), to: 0)
        net.deliverAll()
        // In agreement: both other replicas answer `same`, and the value comes from the coordinator's own copy.
        #expect(read(at: 0) == [7])
        #expect(same() == 2)
        // Write 8 reaches node 0 only: the others differ from it and send their versions; read repair follows.
        net.submit(.put, key: k, value: WriteTag.value(id: 8, pool: pool), context: net.nodes[0].store.state(of: k)
            .reduce(into: CausalContext()) { $0.merge($1.context); $0.add($1.dot) }, to: 0)
        net.deliverAll(keep: { e in if case .write = e.message { return false } else { return true } })
        #expect(read(at: 0) == [8])
        #expect(same() == 2)
        #expect(net.stateIDs(of: k) == [[8], [8], [8]])
        // Write 9 reaches node 0 only; a stale replica coordinates: the third (as stale) says `same`, node 0 sends 9.
        net.submit(.put, key: k, value: WriteTag.value(id: 9, pool: pool), context: net.nodes[0].store.state(of: k)
            .reduce(into: CausalContext()) { $0.merge($1.context); $0.add($1.dot) }, to: 0)
        net.deliverAll(keep: { e in if case .write = e.message { return false } else { return true } })
        #expect(read(at: other) == [9])
        #expect(same() == 3)
        #expect(net.stateIDs(of: k) == [[9], [9], [9]])
        net.discardAll()
        // Every handle released: what stays in use is the one value the three replicas share.
        #expect(pool.statistics().buffersInUse == 1)
    }

    /// A network that purges tombstones 1 ms after every replica holds them, and a key of node 0 with write 1 on
    /// every replica: what the purge tests start from, with the context the put's reply gave.
    func written() -> (pool: BufferPool, net: ManualNetwork, key: UInt64, context: CausalContext) {
        let pool = BufferPool()
        var c = config()
        c.tombstoneGrace = 1_000_000
        let net = ManualNetwork(config: c, pool: pool)
        let k = key(replicatedOn: 0, in: net)
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 1, pool: pool), to: 0)
        net.deliverAll()
        return (pool, net, k, net.reply(put)!.context)
    }

    @Test("a tombstone hides the key, and is purged once every replica holds it")
    func tombstonePurge() {
        let (pool, net, k, context) = written()
        let del = net.submit(.delete, key: k, value: WriteTag.value(id: 2, pool: pool), context: context, to: 0)
        net.deliverAll()
        #expect(net.reply(del)?.status == .ok)
        let get = net.submit(.get, key: k, to: 0)
        net.deliverAll()
        let reply = net.reply(get)!
        #expect(reply.versions.count == 1 && reply.versions[0].isTombstone)
        #expect(reply.versions.compactMap(WriteTag.id(of:)) == [2])
        Siblings.release(reply.versions, pool: pool)
        // Before the grace period the tombstones stay; after it, the purge removes them everywhere.
        #expect(net.replicas(of: k).allSatisfy { net.nodes[$0].store.keyCount == 1 })
        net.advance(by: 2_000_000)
        net.deliverAll()
        #expect(net.replicas(of: k).allSatisfy { net.nodes[$0].store.state(of: k).isEmpty })
        net.discardAll()
    }

    @Test("no purge while a replica lacks the tombstone")
    func noPurgeWithoutAllReplicas() {
        let (_, net, k, context) = written()
        let lagging = net.replicas(of: k).first { $0 != 0 }!
        net.submit(.delete, key: k, context: context, to: 0)
        net.deliverAll(keep: { !($0.to == .node(lagging)) })
        net.advance(by: 200_000_000)  // past the timeout and the grace period
        net.deliverAll()
        #expect(net.nodes[lagging].store.state(of: k).compactMap(WriteTag.id(of:)) == [1])
        #expect(net.replicas(of: k).filter { $0 != lagging }.allSatisfy {
            Siblings.deleted(net.nodes[$0].store.state(of: k))
        })
        net.discardAll()
    }

    @Test("a version its purged tombstone superseded, arriving late, is dropped, not resurrected; the tombstone itself may return")
    func noResurrectionAfterPurge() {
        let (pool, net, k, context) = written()
        // What a hint or a delayed message would carry to a replica later: write 1's version.
        let late = Siblings.copy(net.nodes[0].store.state(of: k), pool: pool)
        net.submit(.delete, key: k, value: WriteTag.value(id: 2, pool: pool), context: context, to: 0)
        net.deliverAll()
        let tombstone = Siblings.copy(net.nodes[0].store.state(of: k), pool: pool)
        net.advance(by: 2_000_000)
        net.deliverAll()
        let replica = net.replicas(of: k).first { $0 != 0 }!
        let store = net.nodes[replica].store
        #expect(store.state(of: k).isEmpty)
        // Write 1 arrives after the purge: the delete had superseded it, so it stays deleted.
        #expect(store.apply(key: k, late) == false)
        #expect(store.state(of: k).isEmpty && !store.holds(k) && store.lateVersionsDropped == 1)
        // The tombstone itself (from a replica that missed the purge) is taken back, so repair converges.
        #expect(store.apply(key: k, tombstone) == true)
        #expect(store.state(of: k).compactMap(WriteTag.id(of:)) == [2])
        // A write the delete did not see is a new version, kept.
        let fresh = net.submit(.put, key: k, value: WriteTag.value(id: 3, pool: pool), to: 0)
        net.deliverAll()
        #expect(net.reply(fresh)?.status == .ok)
        #expect(net.nodes[0].store.state(of: k).compactMap(WriteTag.id(of:)) == [3])
        net.discardAll()
    }

    @Test("a request without its quorum fails at the timeout")
    func timeout() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(w: 3), pool: pool)
        let k = key(replicatedOn: 0, in: net)
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 1, pool: pool), to: 0)
        let silent = net.replicas(of: k).first { $0 != 0 }!
        net.deliverAll(keep: { $0.to != .node(silent) })
        #expect(net.reply(put) == nil)
        net.advance(by: net.config.timeout + 1)
        net.deliverAll()
        #expect(net.reply(put)?.status == .timeout)
        #expect(net.nodes[0].counters.failed == 1)
        net.discardAll()
    }

    @Test("bad input is ignored and counted, never a crash")
    func badInput() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(), pool: pool)
        let k = key(replicatedOn: 0, in: net)
        let replicas = net.replicas(of: k)
        let outsider = (0..<5).first { !replicas.contains($0) }!
        // A message from a node that does not exist.
        net.inFlight.append(Envelope(from: .node(99), to: .node(0),
                                     message: .write(ReplicaWrite(request: 1, key: k, versions: []))))
        // A write for a key this node does not replicate.
        net.inFlight.append(Envelope(from: .node(1), to: .node(outsider),
                                     message: .write(ReplicaWrite(request: 0, key: k, versions: []))))
        // An ack and a response for requests that never existed.
        net.inFlight.append(Envelope(from: .node(1), to: .node(0), message: .writeAck(ReplicaAck(request: 999, key: k))))
        net.inFlight.append(Envelope(from: .node(1), to: .node(0),
                                     message: .readResponse(ReplicaReadResponse(request: 998, key: k, versions: []))))
        net.deliverAll()
        // A duplicate ack, and an ack from a node that is not a replica of the key.
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 1, pool: pool), to: 0)
        net.deliverAll(keep: { e in
            if case .writeAck = e.message { return false }
            return true
        })
        // Deliver the acks by hand: first one, then the same again, then one from the outsider.
        let remote = replicas.first { $0 != 0 }!
        let ackRequest: UInt64 = 1
        net.inFlight.append(Envelope(from: .node(remote), to: .node(0), message: .writeAck(ReplicaAck(request: ackRequest, key: k))))
        net.inFlight.append(Envelope(from: .node(remote), to: .node(0), message: .writeAck(ReplicaAck(request: ackRequest, key: k))))
        net.inFlight.append(Envelope(from: .node(outsider), to: .node(0), message: .writeAck(ReplicaAck(request: ackRequest, key: k))))
        net.deliverAll()
        #expect(net.reply(put)?.status == .ok)
        let c0 = net.nodes[0].counters
        #expect(c0.ignored >= 2)  // the unknown node, the outsider's ack
        #expect(c0.duplicateReplies == 1)
        #expect(c0.lateReplies == 2)
        #expect(net.nodes[outsider].counters.ignored == 1)
        net.discardAll()
    }

    @Test("client-side coordination: the same logic with every replica remote")
    func clientRouting() {
        let pool = BufferPool()
        var c = config(w: 2, r: 2)
        c.routing = .client
        let ring = c.makeRing()
        let nodes = (0..<5).map { Node(id: $0, config: c, ring: ring, pool: pool) }
        let client = Coordinator(endpoint: .client(0), config: c, ring: ring, pool: pool)
        var out = Outbox()
        var queue: [Envelope] = []
        var replies: [ClientReply] = []
        func pump() {
            queue += out.messages
            out.removeAll()
            while !queue.isEmpty {
                let e = queue.removeFirst()
                if e.to.isClient {
                    switch e.message {
                    case .reply(let r): replies.append(r)
                    case .writeAck(let a): client.writeAcked(a, from: e.from, now: 1, out: &out)
                    case .readResponse(let r): client.readAnswered(r, from: e.from, now: 1, out: &out)
                    default: break
                    }
                } else {
                    nodes[e.to.index].handle(e, now: 1, out: &out)
                }
                queue += out.messages
                out.removeAll()
            }
        }
        client.start(ClientRequest(tag: 1, op: .put, key: 5, value: WriteTag.value(id: 9, pool: pool)),
                     from: .client(0), now: 1, local: nil, out: &out)
        pump()
        client.start(ClientRequest(tag: 2, op: .get, key: 5), from: .client(0), now: 1, local: nil, out: &out)
        pump()
        #expect(replies.map(\.status) == [.ok, .ok])
        #expect(replies[1].versions.compactMap(WriteTag.id(of:)) == [9])
        #expect(replies[0].dot?.actor.isClient == true)
        Siblings.release(replies[1].versions, pool: pool)
    }
}
