import BufferPool
import QuorumTestSupport
import Testing
@testable import ReplicationCore

/// A key whose replicas include every node of `on` and none of `off`.
func key(in net: ManualNetwork, on: [Int], off: [Int] = [], after start: UInt64 = 1) -> UInt64 {
    var k = start
    while true {
        let reps = net.replicas(of: k)
        if on.allSatisfy(reps.contains) && !off.contains(where: reps.contains) { return k }
        k += 1
    }
}

/// Makes node 0 suspect `down`: a write it coordinates goes unanswered by `down` for longer than the suspicion
/// timeout.
func suspect(_ down: Int, in net: ManualNetwork, pool: BufferPool) {
    let k = key(in: net, on: [0, down], after: 10_000)
    net.submit(.put, key: k, value: WriteTag.value(id: 9_999, pool: pool), to: 0)
    net.run(for: 2 * net.config.suspicionTimeout)
    net.replies.removeAll()
}

@Suite("Failures: detection, sloppy quorum, hinted handoff, anti-entropy")
struct FailureTests {
    func setup(_ edit: (inout CoreConfig) -> Void = { _ in }) -> (ManualNetwork, BufferPool) {
        let pool = BufferPool()
        var c = config()
        c.antiEntropy = false
        edit(&c)
        let net = ManualNetwork(config: c, pool: pool)
        net.bootAll()
        return (net, pool)
    }

    @Test("a peer that stops answering is suspected, pinged, and trusted again when it answers")
    func detection() {
        let (net, pool) = setup()
        net.crash(2)
        suspect(2, in: net, pool: pool)
        #expect(net.nodes[0].coordinator.detector.isSuspected(2))
        #expect(net.nodes[0].counters.suspicions == 1)
        net.run(for: 30_000_000)
        #expect(net.nodes[0].counters.pings >= 2)  // every probe interval while suspected
        net.restart(2)
        net.run(for: 30_000_000)
        #expect(!net.nodes[0].coordinator.detector.isSuspected(2))
        net.discardAll()
    }

    @Test("sloppy quorum: a write for a suspected replica goes to a fallback as a hint, handed over and deleted on recovery")
    func handoff() {
        let (net, pool) = setup()
        let owner = 2
        net.crash(owner)
        suspect(owner, in: net, pool: pool)
        let k = key(in: net, on: [0, owner])
        let put = net.submit(.put, key: k, value: WriteTag.value(id: 7, pool: pool), to: 0)
        net.run(for: 5_000_000)
        #expect(net.reply(put)?.status == .ok)
        let holders = net.nodes.filter { $0.hints.count(for: owner) > 0 }.map(\.id)
        #expect(holders.count == 1)
        #expect(!net.replicas(of: k).contains(holders[0]))  // a fallback, its hint kept apart from its data
        #expect(net.nodes[holders[0]].store.state(of: k).isEmpty)
        #expect(net.nodes[owner].store.state(of: k).isEmpty)
        net.restart(owner)
        net.run(for: 100_000_000)
        #expect(net.nodes[owner].store.state(of: k).compactMap(WriteTag.id(of:)) == [7])
        #expect(net.nodes.allSatisfy { $0.hints.count == 0 })
        #expect(net.nodes[holders[0]].counters.hintsDelivered >= 1)
        net.discardAll()
    }

    @Test("hints stay within their bounds per owner and in total; the excess is counted as dropped")
    func hintBounds() {
        for (perOwner, total) in [(10, 1_000), (1_000, 6)] {
            let (net, pool) = setup { $0.hintLimitPerOwner = perOwner; $0.hintLimitTotal = total }
            net.crash(2)
            net.crash(3)
            suspect(2, in: net, pool: pool)
            suspect(3, in: net, pool: pool)
            var k: UInt64 = 0
            for i in 0..<60 {
                k = key(in: net, on: [0], after: k + 1)
                net.submit(.put, key: k, value: WriteTag.value(id: UInt64(100 + i), pool: pool), to: 0)
            }
            net.run(for: 5_000_000)
            for node in net.nodes {
                #expect(node.hints.count <= total)
                for owner in node.hints.owners { #expect(node.hints.count(for: owner) <= perOwner) }
            }
            #expect(net.nodes.reduce(0) { $0 + $1.counters.hintsDropped } > 0)
            net.discardAll()
        }
    }

    @Test("strict quorum counts only replicas; sloppy counts fallbacks (n=3, w=r=3, one replica down)")
    func strictAndSloppy() {
        for mode in [QuorumMode.sloppy, .strict] {
            let (net, pool) = setup { $0.w = 3; $0.r = 3; $0.quorum = mode }
            net.crash(2)
            suspect(2, in: net, pool: pool)
            let k = key(in: net, on: [0, 2])
            let put = net.submit(.put, key: k, value: WriteTag.value(id: 5, pool: pool), to: 0)
            net.run(for: 150_000_000)
            let get = net.submit(.get, key: k, to: 0)
            net.run(for: 150_000_000)
            let hinted = net.nodes.filter { $0.hints.holds(k) }.count
            #expect(hinted == 1, "the write lands on a fallback as a hint in both modes")
            if mode == .sloppy {
                #expect(net.reply(put)?.status == .ok)
                #expect(net.reply(get)?.status == .ok)
            } else {
                #expect(net.reply(put)?.status == .timeout)
                #expect(net.reply(get)?.status == .timeout)
            }
            net.discardAll()
        }
    }

    @Test("one differing key among 100,000 costs tree nodes by the tree's depth, not by the key count")
    func merkleCost() {
        var costs: [Int] = []
        for keys in [10_000, 100_000] {
            let pool = BufferPool()
            var c = config(nodes: 3, n: 3)
            c.vnodes = 4
            let net = ManualNetwork(config: c, pool: pool)
            for k in 0..<UInt64(keys) {
                let v = Version(dot: Dot(actor: .replica(node: 0, incarnation: 0), counter: k + 1), context: .empty,
                                stamp: k, value: nil)
                net.nodes[0].store.apply(key: k, [v])
                net.nodes[1].store.apply(key: k, [v])
            }
            let extra = UInt64(keys) + 7
            net.nodes[0].store.apply(key: extra, [Version(dot: Dot(actor: .replica(node: 0, incarnation: 0), counter: 1),
                                                          context: .empty, stamp: 1, value: WriteTag.value(id: 77, pool: pool))])
            net.nodes[0].beginExchange(with: 1, out: &net.scratch)
            net.flushScratch(from: 0)
            var repairs = 0
            net.deliverAll { e in
                if case .write(let w) = e.message, w.origin == .antiEntropy { repairs += 1 }
                return true
            }
            let treeNodes = net.nodes[0].counters.aeTreeNodesSent + net.nodes[1].counters.aeTreeNodesSent
            costs.append(treeNodes)
            let merkle = net.nodes[0].store.merkle!
            // The roots of the shared partitions, then two children per level down one path, then the leaf.
            #expect(treeNodes <= merkle.partitions.count + 2 * c.merkleDepth + 1)
            #expect(repairs == 1)
            #expect(net.nodes[1].counters.aeKeysRepaired == 1)
            #expect(net.nodes[1].store.state(of: extra).compactMap(WriteTag.id(of:)) == [77])
            for p in merkle.partitions {
                #expect(merkle.hash(partition: p, index: 0) == net.nodes[1].store.merkle!.hash(partition: p, index: 0))
            }
            net.discardAll()
        }
        #expect(costs[0] == costs[1])
    }

    @Test("anti-entropy trees are sized by the records: about one key a leaf, at most the default depth")
    func merkleDepthByKeys() {
        // The smallest depth whose leaves over all partitions hold every key once, from 1 up to the limit.
        for (keys, partitions) in [(10_000, 320), (2_000, 320), (1_000_000, 5 * 64), (2_000, 50 * 4096), (0, 320)] {
            let d = MerkleForest.depth(keys: keys, partitions: partitions, limit: 8)
            #expect(d >= 1 && d <= 8)
            #expect(d == 8 || (1 << d) * partitions >= keys, "\(keys) keys, \(partitions) partitions: depth \(d)")
            #expect(d == 1 || (1 << (d - 1)) * partitions < keys, "\(keys) keys, \(partitions) partitions: depth \(d)")
        }
        #expect(MerkleForest.depth(keys: 10_000, partitions: 320, limit: 8) == 5)
        #expect(MerkleForest.depth(keys: 100_000, partitions: 320, limit: 8) == 8)
        #expect(MerkleForest.depth(keys: 100_000, partitions: 320, limit: 0) == 0)
        // 50 nodes of 4,096 vnodes and 2,000 keys: the trees of one node took 50 MB at depth 8.
        var c = CoreConfig()
        c.nodes = 50
        c.vnodes = 4096
        let ring = c.makeRing()
        let depth = MerkleForest.depth(keys: 2_000, partitions: ring.partitionCount, limit: c.merkleDepth)
        let sized = MerkleForest(ring: ring, node: 0, n: 3, depth: depth)
        let fixed = MerkleForest(ring: ring, node: 0, n: 3, depth: c.merkleDepth)
        #expect(sized.hashes.count * 8 < 1 << 20 && fixed.hashes.count * 8 > 40 << 20,
                "\(sized.hashes.count * 8) bytes against \(fixed.hashes.count * 8)")
    }

    @Test("a wiped node is rebuilt by anti-entropy, and by read repair")
    func wipedNodeRebuilt() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(nodes: 3, n: 3), pool: pool)
        for k in 0..<UInt64(300) {
            net.submit(.put, key: k, value: WriteTag.value(id: 1_000 + k, pool: pool), to: Int(k % 3))
        }
        net.deliverAll()
        net.replies.removeAll()
        net.crash(2, wipe: true)
        net.restart(2)
        #expect(net.nodes[2].store.keyCount == 0)
        // Read repair: a read of one key restores it on the wiped replica.
        let get = net.submit(.get, key: 5, to: 0)
        net.deliverAll()
        #expect(net.reply(get)?.status == .ok)
        #expect(net.nodes[2].store.state(of: 5).compactMap(WriteTag.id(of:)) == [1_005])
        // Anti-entropy: one exchange restores the rest.
        net.nodes[0].beginExchange(with: 2, out: &net.scratch)
        net.flushScratch(from: 0)
        net.deliverAll()
        #expect(net.nodes[2].store.keyCount == 300)
        for k in 0..<UInt64(300) { #expect(Siblings.same(net.nodes[0].store.state(of: k), net.nodes[2].store.state(of: k))) }
        #expect(net.nodes[2].counters.aeKeysRepaired == 299)
        net.discardAll()
    }

    @Test("kv679: a node that returns empty writes under a new incarnation, so its new writes are not mistaken for old ones")
    func newIncarnation() {
        let pool = BufferPool()
        let net = ManualNetwork(config: config(nodes: 3, n: 3, w: 3, r: 3), pool: pool)
        let k: UInt64 = 42
        var context = CausalContext.empty
        for id in 1...3 as ClosedRange<UInt64> {
            let t = net.submit(.put, key: k, value: WriteTag.value(id: id, pool: pool), context: context, to: 0)
            net.deliverAll()
            context = net.reply(t)!.context
        }
        #expect(net.stateIDs(of: k) == [[3], [3], [3]])
        net.crash(0, wipe: true)
        net.restart(0)
        // A client that saw write 3 (dot n0.0:3) writes through the wiped node, which counts from 1 again.
        let t = net.submit(.put, key: k, value: WriteTag.value(id: 4, pool: pool), context: context, to: 0)
        net.deliverAll()
        let reply = net.reply(t)!
        #expect(reply.status == .ok)
        #expect(reply.dot?.actor.incarnation == 1)
        #expect(reply.dot?.counter == 1)
        // Without the new incarnation the dot n0:1 would be covered by the client's context and dropped everywhere.
        #expect(net.stateIDs(of: k) == [[4], [4], [4]])
        net.discardAll()
    }

    @Test("sloppy quorum: a replica that goes silent during a request gets a stand-in, and the request still succeeds")
    func standIn() {
        for mode in [QuorumMode.sloppy, .strict] {
            let (net, pool) = setup { $0.w = 3; $0.quorum = mode }
            let k = key(in: net, on: [0, 2])
            net.crash(2)  // not yet suspected by anyone
            let put = net.submit(.put, key: k, value: WriteTag.value(id: 8, pool: pool), to: 0)
            net.run(for: 60_000_000)
            if mode == .sloppy {
                #expect(net.reply(put)?.status == .ok)
                #expect(net.nodes.filter { $0.hints.holds(k) }.count == 1)
            } else {
                #expect(net.reply(put) == nil, "strict: no stand-in counts, the request waits for its timeout")
            }
            net.discardAll()
        }
    }

    @Test("fewer nodes reachable than the quorum needs: every request still gets exactly one reply, at its timeout")
    func quorumOutOfReach() {
        // Three nodes, n = w = r = 3, one down and suspected: no fallback exists, the two replicas left answer and
        // the request must still be answered (it once vanished here, and a closed-loop client waited forever).
        let (net, pool) = setup { $0.nodes = 3; $0.w = 3; $0.r = 3 }
        net.crash(2)
        suspect(2, in: net, pool: pool)
        let put = net.submit(.put, key: 42, value: WriteTag.value(id: 6, pool: pool), to: 0)
        let get = net.submit(.get, key: 42, to: 0)
        net.run(for: 2 * net.config.timeout)
        #expect(net.replies.map(\.tag).filter { $0 >= put }.sorted() == [put, get], "one reply per request")
        #expect(net.reply(put)?.status == .timeout)
        #expect(net.reply(get)?.status == .timeout)
        net.discardAll()
    }
}
