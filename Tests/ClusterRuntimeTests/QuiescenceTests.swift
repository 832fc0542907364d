import BufferPool
import Testing
@testable import ClusterRuntime
@testable import ReplicationCore

@Suite("Quiescence")
struct QuiescenceTests {
    /// The definition, written out: a key diverges when some node holding it holds other versions than one of its
    /// n replicas (a node without the key holds none). Every holder against every replica.
    static func divergentKeys(_ nodes: [Node], ring: Ring, n: Int) -> Set<UInt64> {
        var keys = Set<UInt64>()
        for node in nodes {
            node.store.forEach { key, state in
                for r in ring.replicas(of: Key(key), n: n) where !Siblings.same(state, nodes[Int(r)].store.state(of: key)) {
                    keys.insert(key)
                }
            }
        }
        return keys
    }

    @Test("divergence counts the keys whose holders disagree with a replica: primaries, fallbacks, empty entries")
    func divergenceMatchesTheDefinition() {
        let pool = BufferPool()
        var core = CoreConfig()
        core.nodes = 6
        core.n = 3
        core.vnodes = 8
        let ring = core.makeRing()
        let nodes = (0..<core.nodes).map { Node(id: $0, config: core, ring: ring, pool: pool) }
        var rng = Xoshiro(seed: 42)
        let actor = Actor.replica(node: 0, incarnation: 0)
        func version(_ counter: UInt64) -> Version {
            Version(dot: Dot(actor: actor, counter: counter), context: .empty, stamp: counter, value: nil)
        }
        let keys: UInt64 = 2_000
        for key in 0..<keys {
            // Usually every replica agrees (the common case after repair); otherwise each of the six nodes, replica
            // or not, independently holds nothing, the agreed versions, other versions, or an emptied entry.
            let agreed = [version(key * 4 + 1), version(key * 4 + 2)]
            let list = Array(ring.replicas(of: Key(key), n: core.nodes))
            let scramble = rng.next(below: 4) == 0
            for (rank, node) in list.enumerated() {
                let choice = scramble ? rng.next(below: 6) : (rank < core.n ? 1 : 0)
                let store = nodes[Int(node)].store
                switch choice {
                case 1, 2: store.apply(key: key, agreed)
                case 3: store.apply(key: key, [version(key * 4 + 3)])
                case 4: store.withEntry(key) { _ in }  // held with no versions
                default: break
                }
            }
        }
        let expected = Self.divergentKeys(nodes, ring: ring, n: core.n)
        #expect(expected.count > 300 && expected.count < 600, "a quarter of the keys are scrambled, most of those diverge: \(expected.count)")
        #expect(Quiescence.divergence(of: nodes, ring: ring, n: core.n).keys == expected)
        // Agreement restored on one divergent key: that key alone leaves the set.
        let fixed = expected.min()!
        for node in nodes { node.store.data[FastKey(fixed)] = nil }  // versions without values: nothing to release
        for r in ring.replicas(of: Key(fixed), n: core.n) { nodes[Int(r)].store.apply(key: fixed, [version(1)]) }
        #expect(Self.divergentKeys(nodes, ring: ring, n: core.n) == expected.subtracting([fixed]))
        #expect(Quiescence.divergence(of: nodes, ring: ring, n: core.n).keys == expected.subtracting([fixed]))
    }
}
