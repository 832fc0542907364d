import Testing
@testable import ClusterRuntime
@testable import ReplicationCore

@Suite("Coordinator choice (server routing)")
struct CoordinatorChoiceTests {
    @Test("a refused request tries another node; once every node refused lately, the one refused longest ago, held back until it may be tried")
    func everyNodeRefused() {
        let ring = Ring(nodes: 5, vnodes: 64)
        var choice = CoordinatorChoice(nodes: 5)
        var rng = Xoshiro(seed: 1)
        let key: UInt64 = 42, tag: UInt64 = 7
        let replicas = Set(ring.replicas(of: Key(key), n: 3).map(Int.init))
        // Nothing refused: one of the key's replicas.
        var node = choice.pick(for: key, ring: ring, n: 3, now: 0, rng: &rng)
        #expect(replicas.contains(node))
        // Every node refuses in turn, 1 ms apart: each refusal sends the request to a node not yet refused, the
        // key's replicas first, until the fifth refusal fails it.
        var tried = [node]
        for i in 1...5 {
            let next = choice.refused(tag, key: key, by: node, ring: ring, n: 3, now: UInt64(i) * 1_000_000, rng: &rng)
            guard i < 5 else {
                #expect(next == nil, "the request fails once every node has refused it")
                break
            }
            guard let next else { Issue.record("failed after \(i) refusals"); return }
            #expect(!tried.contains(next), "refusal \(i): \(next) again, after \(tried)")
            #expect(i >= 3 || replicas.contains(next), "refusal \(i): \(next) is not a replica")
            tried.append(next)
            node = next
        }
        // A new request at 10 ms, every node avoided: the first node refused (at 1 ms) is the one to try, at 21 ms.
        choice.finished(tag)
        let oldest = tried[0]
        #expect(choice.pick(for: key, ring: ring, n: 3, now: 10_000_000, rng: &rng) == oldest)
        #expect(choice.avoidUntil[oldest] == 1_000_000 + CoordinatorChoice.avoidNanos)
        #expect(choice.arrival(10_000_000, to: oldest) == 21_000_000, "held back until it may be tried")
        #expect(choice.arrival(30_000_000, to: oldest) == 30_000_000, "not delayed once it may")
        #expect(choice.holds(oldest, now: 10_000_000) && !choice.holds(oldest, now: 21_000_000))
        // Once its time has come (and only its: the next one's is at 22 ms), it is the one node not avoided.
        #expect(choice.pick(for: key, ring: ring, n: 3, now: 21_500_000, rng: &rng) == oldest)
    }
}
