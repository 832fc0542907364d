import Testing
@testable import ClusterRuntime
@testable import ReplicationCore

@Suite("Slab")
struct SlabTests {
    /// Counts the objects alive: a value destroyed twice or never shows here.
    final class Census { var alive = 0 }

    final class Tracked {
        let id: Int
        let census: Census
        init(_ id: Int, _ census: Census) {
            self.id = id
            self.census = census
            census.alive += 1
        }
        deinit { census.alive -= 1 }
    }

    struct Parcel {
        var object: Tracked
        var payload: [Int]
    }

    @Test("every value parked comes back once, intact, through growth and reuse of slots; nothing leaks")
    func parkAndTake() {
        var rng = Xoshiro(seed: 3)
        let census = Census()
        do {
            var slab = Slab<Parcel>(capacity: 4)
            var parked: [(slot: Int, id: Int)] = []
            var next = 0
            for _ in 0..<20_000 {
                if parked.isEmpty || rng.next(below: 5) < 3 {
                    var value = Parcel(object: Tracked(next, census), payload: [next, next * 2])
                    let slot: Int
                    if rng.next(below: 2) == 0 {
                        slot = slab.put(value)
                    } else {
                        slot = withUnsafeMutablePointer(to: &value) { slab.put(moving: $0) }
                        // `value` was moved out by its bytes: put a fresh one back, so that its end releases nothing twice.
                        withUnsafeMutablePointer(to: &value) { $0.initialize(to: Parcel(object: Tracked(-1, census), payload: [])) }
                    }
                    #expect(!parked.contains { $0.slot == slot }, "slot \(slot) handed out twice")
                    parked.append((slot, next))
                    next += 1
                } else {
                    let (slot, id) = parked.remove(at: rng.next(below: parked.count))
                    let value = slab.take(slot)
                    #expect(value.object.id == id && value.payload == [id, id * 2])
                }
                #expect(slab.count == parked.count)
            }
            for (slot, id) in parked { #expect(slab.take(slot).object.id == id) }
            #expect(slab.count == 0)
        }
        #expect(census.alive == 0)
    }
}
