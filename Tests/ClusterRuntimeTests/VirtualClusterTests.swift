import BufferPool
import QuorumTestSupport
import Testing
@testable import ClusterRuntime
@testable import ReplicationCore

@Suite("Virtual cluster")
struct VirtualClusterTests {
    @Test("a record loaded without messages is what an insert through a coordinator leaves",
          arguments: [Versioning.vv, .lww])
    func preloadIsAnInsert(versioning: Versioning) throws {
        var core = CoreConfig()
        core.versioning = versioning
        let pool = BufferPool()
        let cluster = VirtualCluster(options: ClusterOptions(
            core: core, workers: 1, clients: 1, delays: Delays(all: try Distribution.parse("exp(mean=1ms)")),
            seed: 3, pool: pool))
        var replies: [ClientReply] = []
        cluster.onReply = { _, reply in replies.append(reply) }
        func put(_ key: UInt64, id: UInt64, context: CausalContext = .empty) -> ClientReply {
            replies = []
            cluster.submit(client: 0, ClientRequest(tag: id, op: .put, key: key,
                                                    value: WriteTag.value(id: id, pool: pool), context: context))
            while replies.isEmpty && cluster.step() {}
            cluster.run(until: cluster.now + 1_000_000_000)  // every replica's write, not just w of them
            return try! #require(replies.first)
        }

        // Keys 0..<20 inserted through the coordinators (messages, delays, acks), 20..<40 preloaded.
        var contexts: [UInt64: CausalContext] = [:]
        for key in UInt64(0)..<20 {
            let reply = put(key, id: key + 1)
            #expect(reply.status == .ok)
            contexts[key] = reply.context
        }
        for key in UInt64(20)..<40 { contexts[key] = cluster.preload(key: key, value: WriteTag.value(id: key + 1, pool: pool)) }

        for key in UInt64(0)..<40 {
            let replicas = cluster.ring.replicas(of: Key(key), n: core.n).map(Int.init)
            // Held by its n replicas and no other node, each with the same one version: the insert's value, no
            // context, a dot of one of the key's replicas.
            for node in cluster.nodes where !replicas.contains(node.id) { #expect(!node.store.holds(key)) }
            let states = replicas.map { cluster.nodes[$0].store.state(of: key) }
            let version = try #require(states[0].first)
            #expect(states.allSatisfy { $0.count == 1 && $0[0].dot == version.dot && $0[0].stamp == version.stamp })
            #expect(version.context.isEmpty && !version.isTombstone && WriteTag.id(of: version) == key + 1)
            #expect(!version.dot.actor.isLoose && replicas.contains(version.dot.actor.node))
            // The digests anti-entropy compares agree.
            let digests = replicas.map { cluster.nodes[$0].store.stateAndDigest(of: key).digest }
            #expect(Set(digests).count == 1 && digests[0] != 0)
            // The client learns exactly the insert's dot (vv), or nothing (lww), either way.
            #expect(contexts[key] == (versioning == .vv ? context(exact: version.dot) : .empty), "key \(key)")
        }

        // Written again with what the client learned, either kind of record is superseded everywhere.
        for key in [UInt64(3), 27] {
            #expect(put(key, id: 100 + key, context: contexts[key]!).status == .ok)
            for node in cluster.ring.replicas(of: Key(key), n: core.n) {
                let state = cluster.nodes[Int(node)].store.state(of: key)
                #expect(state.count == 1 && WriteTag.id(of: state[0]) == 100 + key, "key \(key) at node \(node)")
            }
        }
    }

    func context(exact dot: Dot) -> CausalContext {
        var c = CausalContext.empty
        c.addExact(dot)
        return c
    }
}
