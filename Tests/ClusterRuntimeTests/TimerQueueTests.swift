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

    @Test("pushes in time order and out of it come out in exactly (time, push order), ties included")
    func exactOrder() {
        var rng = Xoshiro(seed: 11)
        var q = TimerQueue<Int>()
        var pending: [(at: UInt64, id: Int)] = []  // the reference: what is queued, in push order
        var now: UInt64 = 0
        var out: [Int] = [], expected: [Int] = []
        func pop(upTo limit: UInt64) {
            while let id = q.popDue(limit) { out.append(id) }
            // The reference pops the earliest time first, and of equal times the one pushed first.
            while let i = pending.indices.filter({ pending[$0].at <= limit }).min(by: {
                (pending[$0].at, $0) < (pending[$1].at, $1)
            }) {
                expected.append(pending.remove(at: i).id)
            }
            // What is left starts at the reference's earliest.
            #expect(q.earliest?.at == pending.map(\.at).min())
        }
        for id in 0..<5_000 {
            now += UInt64(rng.next(below: 3))
            if rng.next(below: 2) == 0 {
                // A timeout: now + a fixed period (the lanes' kind); coarse, so that many tie.
                let at = now + [10, 50][rng.next(below: 2)]
                q.push(at: at, id)
                pending.append((at, id))
            } else {
                // Any time at all (to a lane if one fits, else to the heap); small, so that it ties with the others.
                let at = now + UInt64(rng.next(below: 60))
                q.push(at: at, id)
                pending.append((at, id))
            }
            if rng.next(below: 4) == 0 { pop(upTo: now) }
        }
        pop(upTo: .max)
        #expect(out.count == 5_000 && expected.count == 5_000)
        let firstWrong = zip(out, expected).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(firstWrong == nil, "pop \(firstWrong?.offset ?? 0) gave \(firstWrong?.element.0 ?? 0), not \(firstWrong?.element.1 ?? 0)")
    }
}
