import Testing
@testable import ClusterRuntime
@testable import ReplicationCore

@Suite("Calendar queue")
struct CalendarQueueTests {
    /// Drives a calendar queue as the simulator does — pushes at or after a clock that follows what is popped —
    /// and checks every pop against a reference: the earliest time, and of equal times the first pushed.
    /// `time` draws an entry's time given the clock (the simulator's are never before it).
    func check(scale: Double, seed: UInt64, _ time: (inout Xoshiro, UInt64) -> UInt64) {
        var rng = Xoshiro(seed: seed)
        let q = CalendarQueue(scale: scale)
        var pending: [(at: UInt64, seq: UInt64)] = []  // the reference: what is queued
        var now: UInt64 = 0, seq: UInt64 = 0
        var popped = 0
        func popOne() {
            let i = pending.indices.min { (pending[$0].at, pending[$0].seq) < (pending[$1].at, pending[$1].seq) }!
            let want = pending.remove(at: i)
            #expect(q.peek().map { $0.at == want.at && $0.seq == want.seq } == true)
            guard let e = q.pop() else {
                Issue.record("empty with \(pending.count + 1) queued (seed \(seed))")
                return
            }
            #expect(e.at == want.at && e.seq == want.seq && e.payload == Int(want.seq),
                    "popped (\(e.at), \(e.seq)), want (\(want.at), \(want.seq)) (scale \(scale), seed \(seed))")
            now = max(now, e.at)
            popped += 1
        }
        for _ in 0..<6_000 {
            // Bursts of pushes, then pops: the queue's depth wanders between empty and a few hundred.
            for _ in 0..<rng.next(below: 4) {
                let at = time(&rng, now)
                q.push(at: at, seq: seq, payload: Int(seq), now: now)
                pending.append((at, seq))
                seq += 1
            }
            for _ in 0..<rng.next(below: pending.count < 300 ? 4 : 6) where !pending.isEmpty { popOne() }
            #expect(q.count == pending.count)
        }
        while !pending.isEmpty { popOne() }
        #expect(q.isEmpty && q.pop() == nil && q.peek() == nil)
        #expect(popped == Int(seq))
    }

    @Test("exponential delays at the scale it was made for: exact (time, push) order")
    func exponential() {
        check(scale: 1_000_000, seed: 1) { rng, now in now + UInt64(Distribution.exponential(mean: 1_000_000).sample(&rng)) }
    }

    @Test("coarse times, many equal: ties come out in push order")
    func ties() {
        check(scale: 1_000_000, seed: 2) { rng, now in now / 500_000 * 500_000 + UInt64(rng.next(below: 4)) * 500_000 }
    }

    @Test("delays far longer and far shorter than its scale: the overflow heap and crowded buckets keep the order")
    func mismatched() {
        // Horizon of the 10 µs scale: 4,096 buckets of 256 ns, about 1 ms; these go to 10 s.
        check(scale: 10_000, seed: 3) { rng, now in
            now + (rng.next(below: 2) == 0 ? UInt64(rng.next(below: 10_000_000_000)) : UInt64(rng.next(below: 300)))
        }
        // A 100 ms scale with nanosecond delays: everything in one or two buckets, inserted in the middle.
        check(scale: 100_000_000, seed: 4) { rng, now in now + UInt64(rng.next(below: 1_000)) }
        // No delay known: the default width.
        check(scale: 0, seed: 5) { rng, now in now + UInt64(rng.next(below: 3_000_000)) }
        // Entries before the clock (the queue takes them, though the simulator never pushes one).
        check(scale: 1_000_000, seed: 6) { rng, now in
            now + UInt64(rng.next(below: 2_000_000)) - min(now, rng.next(below: 5) == 0 ? 1_500_000 : 0)
        }
    }

    @Test("a bucket crowded with entries in random order (operations that take no virtual time): exact order, the deep ones in the heap")
    func crowded() {
        // 50,000 entries within one 16 µs bucket, all queued before any pop: sorted insertion walked the list (1.25e9
        // steps); past `longestWalk` nodes an entry now goes to the overflow heap.
        var rng = Xoshiro(seed: 11)
        let q = CalendarQueue(scale: 1_000_000)
        var want: [(at: UInt64, seq: UInt64)] = []
        for i in 0..<50_000 {
            let at = 1_000 + UInt64(rng.next(below: 1 << q.shift))
            q.push(at: at, seq: UInt64(i), payload: i, now: 0)
            want.append((at, UInt64(i)))
        }
        // Only the first few stay listed; the rest, landing deep in the bucket's list, wait in the heap.
        #expect(q.overflowCount > 49_000 && q.count == 50_000, "\(q.overflowCount) of \(q.count) in the heap")
        want.sort { ($0.at, $0.seq) < ($1.at, $1.seq) }
        var wrong = 0
        for w in want {
            guard let e = q.pop() else { Issue.record("empty too soon"); return }
            if e.at != w.at || e.seq != w.seq || e.payload != Int(w.seq) { wrong += 1 }
        }
        #expect(wrong == 0 && q.isEmpty)
    }

    @Test("an entry at the far end of the horizon, in a bucket before the current one's in the ring, is found")
    func wrap() {
        let q = CalendarQueue(scale: 0)  // 16,384 ns buckets
        let w = UInt64(1) << q.shift
        q.push(at: 5 * w, seq: 0, payload: 0, now: 0)
        #expect(q.pop()?.payload == 0)  // the current bucket is now number 5
        q.push(at: 5 * w + 4_095 * w, seq: 1, payload: 1, now: 5 * w)  // bucket 4: one turn ahead
        q.push(at: 5 * w + 4_094 * w, seq: 2, payload: 2, now: 5 * w)  // bucket 3
        #expect(q.pop()?.payload == 2 && q.pop()?.payload == 1 && q.isEmpty)
    }

    @Test("removeAll hands back every payload queued, once, and leaves it empty and usable")
    func removeAll() {
        var rng = Xoshiro(seed: 9)
        let q = CalendarQueue(scale: 1_000_000)
        for i in 0..<1_000 { q.push(at: UInt64(rng.next(below: 1 << 40)), seq: UInt64(i), payload: i, now: 0) }
        for _ in 0..<100 { _ = q.pop() }
        let rest = q.removeAll()
        #expect(rest.count == 900 && Set(rest).count == 900 && q.isEmpty && q.pop() == nil)
        q.push(at: 5, seq: 1_000, payload: 7, now: 0)
        #expect(q.pop()?.payload == 7 && q.isEmpty)
    }
}
