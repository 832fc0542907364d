import BufferPool
import ReplicationCore

/// The quiescent end of a run, shared by every runtime: faults have healed and no client is active.
public enum Quiescence {
    /// Repair runs to completion over a synchronous, loss-free transport (the same messages and node code,
    /// delivered at once in the calling thread): rounds of hinted handoff, then (anti-entropy on) one Merkle
    /// exchange between every pair of nodes that share ranges, until no hint is left and an exchange round repairs
    /// nothing, or `maxRounds`. Returns the rounds run. Timers the nodes ask for are ignored: this loop drives the
    /// periodic work itself.
    @discardableResult
    public static func settle(_ nodes: [Node], core: CoreConfig, pool: BufferPool, now start: UInt64,
                              maxRounds: Int = 50) -> Int {
        var now = start
        for node in nodes { node.coordinator.detector.reset() }
        var queue: [Envelope] = []
        var head = 0
        func pump(_ out: inout Outbox) {
            queue.append(contentsOf: out.messages)
            out.removeAll()
            while head < queue.count {
                let e = queue[head]
                head += 1
                if e.to.isClient || e.to.index >= nodes.count {
                    e.message.release(to: pool)
                    continue
                }
                nodes[e.to.index].handle(e, now: now, out: &out)
                queue.append(contentsOf: out.messages)
                out.removeAll()
            }
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        func repaired() -> Int { nodes.reduce(0) { $0 + $1.counters.aeKeysRepaired } }
        var out = Outbox()
        for round in 1...maxRounds {
            now &+= core.timeout &+ 1  // unacknowledged handoffs of the last round may be retried
            for node in nodes where node.hints.count > 0 || !node.handoffsEmpty {
                node.handOff(now: now, out: &out, batch: Int.max)
                pump(&out)
            }
            var fixed = 0
            if core.antiEntropy {
                let before = repaired()
                for a in nodes {
                    for b in nodes where b.id > a.id {
                        a.beginExchange(with: b.id, out: &out)
                        pump(&out)
                    }
                }
                fixed = repaired() - before
            }
            if fixed == 0 && nodes.allSatisfy({ $0.hints.count == 0 }) { return round }
        }
        return maxRounds
    }

    /// How far the replicas disagree: the `keys` whose replicas do not all hold the same versions, and how many
    /// Merkle roots (`trees`) differ between two replicas of a partition (anti-entropy on).
    ///
    /// A key diverges when some node that holds it (a replica, or a fallback that kept it) holds other versions
    /// than one of its n replicas (a replica without the key holds none). Sameness being an equivalence, that
    /// is: the primary replica differs from another replica, or a holder differs from the primary. So each key
    /// is compared once at its primary with the other n − 1 replicas, and at every other holder only when it is a
    /// fallback or the primary lacks the key (a miss in the key table alone): 2(n − 1) lookups a key of n holders
    /// instead of n², and a key's versions read once per replica. At 100,000 keys this check was a quarter of a
    /// short run.
    public static func divergence(of nodes: [Node], ring: Ring, n: Int) -> (keys: Set<UInt64>, trees: Int) {
        var keys = Set<UInt64>()
        for node in nodes {
            let store = node.store, me = node.id
            store.forEachKey { key in
                let replicas = ring.replicas(of: Key(key), n: n)
                let primary = Int(replicas[0])
                if primary == me {
                    for r in replicas.dropFirst() where !store.same(key, as: nodes[Int(r)].store) { keys.insert(key) }
                } else if !replicas.contains(UInt16(me)) || !nodes[primary].store.holds(key) {
                    if !store.same(key, as: nodes[primary].store) { keys.insert(key) }
                }
            }
        }
        var trees = 0
        for a in nodes {
            guard let ma = a.store.merkle else { continue }
            for b in nodes where b.id > a.id {
                guard let mb = b.store.merkle else { continue }
                for p in ma.shared[b.id] where ma.hash(partition: p, index: 0) != mb.hash(partition: p, index: 0) {
                    trees += 1
                }
            }
        }
        return (keys, trees)
    }

    /// What a wiped node held (data and hints), for ``ClusterOptions/onWipe``.
    public static func held(by node: Node) -> [Version] {
        var held: [Version] = []
        node.store.forEach { _, state in held += state }
        node.hints.forEach { _, _, state in held += state }
        return held
    }
}
