import SyncPrimitives
import Testing

@Suite("FixedArray")
struct FixedArrayTests {
    final class Census { var alive = 0 }

    final class Tracked {
        let census: Census
        init(_ census: Census) {
            self.census = census
            census.alive += 1
        }
        deinit { census.alive -= 1 }
    }

    struct Counter {
        var n = 0
        var log: [Int] = []
        mutating func bump() {
            n += 1
            log.append(n)
        }
    }

    @Test("elements change in place through a constant reference; every one is destroyed with it")
    func inPlace() {
        let census = Census()
        do {
            let counts = FixedArray(repeating: 0, count: 3)
            counts[1] += 5
            counts[2] = 7
            #expect(Array(counts) == [0, 5, 7])
            let counters = FixedArray((0..<2).map { _ in Counter() })
            counters[0].bump()
            counters[0].bump()
            counters[1].bump()
            #expect(counters.map(\.log) == [[1, 2], [1]])
            let objects = FixedArray((0..<4).map { _ in Tracked(census) })
            objects[2] = Tracked(census)  // the old one goes at once
            #expect(census.alive == 4 && objects.count == 4)
        }
        #expect(census.alive == 0)
    }
}
