import Testing
@testable import LoadGenerator

@Suite("Closed-loop slot balancing")
struct SlotBalancerTests {
    /// Two threads of 32 slots each, always full; each window thread 0 is busy all of it and thread 1 waits
    /// `idle1` of it. Returns the shares after `windows` windows, checking on the way that no slot is ever lost or
    /// made up, and that the requests in flight never exceed the 64 (not even while a slot changes hands).
    func run(idle1: Double, windows: Int) -> (SlotBalancer.Share, SlotBalancer.Share, Int) {
        let balancer = SlotBalancer(threads: 2)
        let window = SlotBalancer.window
        var a = SlotBalancer.Share(thread: 0, cap: 32, now: 0, idle: 0)
        var b = SlotBalancer.Share(thread: 1, cap: 32, now: 0, idle: 0)
        var inFlight = [32, 32]
        var idle: [UInt64] = [0, 0]
        for w in 1...windows {
            let now = UInt64(w) * window
            idle[1] += UInt64(idle1 * Double(window))
            a.update(balancer, now: now, idle: idle[0], inFlight: inFlight[0])
            b.update(balancer, now: now + 1, idle: idle[1], inFlight: inFlight[1])
            // Right after the updates a thread whose share grew fills it at once, while one whose share shrank
            // still has its requests in flight: even then no more than 64.
            #expect(max(inFlight[0], a.cap) + max(inFlight[1], b.cap) <= 64)
            let spare = balancer.shared.withLock { $0.spare }
            #expect(a.cap + a.owed + b.cap + b.owed + spare == 64)
            // Then requests finish and each thread is back at its share.
            inFlight = [a.cap, b.cap]
        }
        return (a, b, balancer.shared.withLock { $0.spare })
    }

    @Test("slots move from the busy thread to the one that waits, down to a quarter of an even share")
    func movesToIdle() {
        let (a, b, spare) = run(idle1: 0.3, windows: 400)
        #expect(a.cap == 8, "the busy thread keeps a quarter of its 32: \(a.cap)")
        #expect(b.cap + spare + a.owed + b.owed == 56)
    }

    @Test("threads about as busy as each other keep their shares")
    func balancedStays() {
        let (a, b, _) = run(idle1: 0.01, windows: 400)
        #expect(a.cap == 32 && b.cap == 32)
    }

    @Test("a slot given up while its request is in flight is handed over only once the request has finished")
    func owedUntilFinished() {
        let balancer = SlotBalancer(threads: 2)
        let window = SlotBalancer.window
        var a = SlotBalancer.Share(thread: 0, cap: 4, now: 0, idle: 0)
        var b = SlotBalancer.Share(thread: 1, cap: 4, now: 0, idle: 0)
        b.update(balancer, now: window, idle: window / 2, inFlight: 4)  // thread 1 waited half its window
        a.update(balancer, now: window, idle: 0, inFlight: 4)  // thread 0 none, and all 4 slots busy
        #expect(a.cap == 3 && a.owed == 1)
        #expect(balancer.shared.withLock { $0.spare } == 0)
        // One request finished: that slot is handed over; thread 0, still the busier, gives up one more, again
        // owed while its 3 requests are in flight.
        a.update(balancer, now: 2 * window, idle: 0, inFlight: 3)
        #expect(balancer.shared.withLock { $0.spare } == 1)
        #expect(a.cap == 2 && a.owed == 1)
        b.update(balancer, now: 2 * window, idle: window / 2 + window / 2, inFlight: 4)
        #expect(b.cap == 5 && balancer.shared.withLock { $0.spare } == 0)
    }
}

@Suite("Closed-loop slot balancing in a run", .serialized)
struct SlotBalancerRunTests {
    @Test("two threads hosting the workers split --concurrency between them, never more in flight")
    func sharesReported() {
        var c = RunConfig()
        c.keys = 2_000
        c.threads = 2
        c.workers = 2
        c.concurrency = 64
        c.duration = 500_000_000
        c.warmup = 200_000_000
        let r = Runner(config: c).run()
        #expect(r.all.failed == 0 && r.all.ok > 0)
        #expect(r.threadShares.count == 2)
        #expect(r.threadShares.reduce(0, +) <= 64 && r.threadShares.allSatisfy { $0 >= 8 }, "\(r.threadShares)")
        // Four threads on two workers run clients only: no balancing, no shares.
        c.threads = 4
        #expect(Runner(config: c).run().threadShares.isEmpty)
    }
}
