import SyncPrimitives
import Testing
@testable import ReplicationCore

@Suite("Timer queue")
struct TimerQueueTests {
    @Test("timers of several periods, in time order or not, come out earliest first, every one once")
    func order() {
        var rng = Xoshiro(seed: 7)
        var q = TimerQueue<Int>()
        var deadline: [UInt64] = []
        var seen = Set<Int>()
        var now: UInt64 = 0
        let periods: [UInt64] = [100, 10, 1_000, 10, 250]  // a timeout and ticks of several intervals
        /// Pops what is due at `upTo`: earliest first, and nothing due is left behind.
        func drain(upTo limit: UInt64) {
            var last: UInt64 = 0
            while let id = q.popDue(limit) {
                #expect(deadline[id] <= limit && deadline[id] >= last)
                #expect(seen.insert(id).inserted)
                last = deadline[id]
            }
            #expect(q.nextTime.map { $0 > limit } ?? true)
        }
        for id in 0..<20_000 {
            now += rng.next(below: 4) == 0 ? UInt64(rng.next(below: 20)) : 0
            // Mostly now + one of the periods (so in order per period), sometimes any deadline at all.
            let at = rng.next(below: 10) == 0 ? now + UInt64(rng.next(below: 2_000))
                                              : now + periods[rng.next(below: periods.count)]
            q.push(at: at, id)
            deadline.append(at)
            if rng.next(below: 3) == 0 { drain(upTo: now) }
        }
        #expect(q.count == deadline.count - seen.count)
        drain(upTo: .max)
        #expect(q.isEmpty && seen.count == deadline.count)
    }
}
