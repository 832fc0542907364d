import Testing
@testable import ReplicationCore

@Suite("Ring")
struct RingTests {
    @Test("5 nodes, 64 vnodes, 1M keys: every node within ±10% of the mean, as primary and as replica")
    func balance() {
        let ring = Ring(nodes: 5, vnodes: 64)
        var primary = [Int](repeating: 0, count: 5)
        var replica = [Int](repeating: 0, count: 5)
        for id in 0..<1_000_000 as Range<UInt64> {
            let list = ring.preferenceList(for: Key(id))
            primary[list[0]] += 1
            for r in list.replicas(3) { replica[Int(r)] += 1 }
        }
        let meanPrimary = 1_000_000.0 / 5
        for c in primary { #expect(abs(Double(c) - meanPrimary) / meanPrimary < 0.10, "primary counts \(primary)") }
        let meanReplica = 3_000_000.0 / 5
        for c in replica { #expect(abs(Double(c) - meanReplica) / meanReplica < 0.10, "replica counts \(replica)") }
    }

    @Test("preference lists name every node once, replicas first", arguments: [(5, 64), (3, 8), (7, 16), (1, 4), (12, 64)])
    func distinctPreferenceLists(nodes: Int, vnodes: Int) {
        let ring = Ring(nodes: nodes, vnodes: vnodes)
        for id in 0..<5000 as Range<UInt64> {
            let list = Array(ring.preferenceList(for: Key(id)))
            #expect(list.count == nodes)
            #expect(Set(list).count == nodes, "key \(id): \(list)")
            #expect(list[0] == ring.primary(of: Key(id)))
        }
    }

    @Test("every node claims exactly its vnodes; no node twice within the spacing")
    func claims() {
        for (nodes, vnodes, spacing) in [(5, 64, 4), (3, 64, 3), (8, 32, 4), (4, 4, 4)] {
            let ring = Ring(nodes: nodes, vnodes: vnodes, spacing: spacing)
            var counts = [Int](repeating: 0, count: nodes)
            for o in ring.owners { counts[Int(o)] += 1 }
            #expect(counts.allSatisfy { $0 == vnodes })
            let q = ring.partitionCount
            for p in 0..<q {
                let window = (0..<min(spacing, nodes)).map { ring.owners[(p + $0) % q] }
                #expect(Set(window).count == window.count, "partition \(p): \(window)")
            }
        }
    }

    @Test("the claim is a function of the seed")
    func seeded() {
        #expect(Ring(nodes: 5, vnodes: 64, seed: 3).owners == Ring(nodes: 5, vnodes: 64, seed: 3).owners)
        #expect(Ring(nodes: 5, vnodes: 64, seed: 3).owners != Ring(nodes: 5, vnodes: 64, seed: 4).owners)
    }
}
