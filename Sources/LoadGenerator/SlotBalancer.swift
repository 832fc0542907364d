import SyncPrimitives

/// Closed loop: `--concurrency` is the number of requests in flight across all threads, and each thread's share
/// of it follows its spare time.
///
/// A thread that hosts a worker does its nodes' work as well as its clients'. Nodes are not evenly spread (5
/// nodes on 2 threads: 3 and 2), so with equal shares the thread with more nodes is the bottleneck while the other
/// waits: here it waited 17% of the time at 32/32, and moving slots to it raised throughput by about a tenth.
/// Every `window` each thread publishes how busy it has been (smoothed over a few windows); one busier than the
/// others by more than `margin` gives a slot back, down to a quarter of an even share, and a thread no busier
/// than the others takes the slots given back. A slot changes hands only once its request has finished, so no
/// more than `--concurrency` are ever in flight.
final class SlotBalancer: @unchecked Sendable {
    struct Shared {
        /// Per thread: how busy it has been, in thousandths (-1: not yet known).
        var busy: [Int]
        /// Slots given back and not taken yet.
        var spare = 0
    }

    let shared: Locked<Shared>
    /// Each thread's share when it stopped issuing (for the report).
    let shares: Locked<[Int]>
    static let window: UInt64 = 5_000_000
    static let margin = 20

    init(threads: Int) {
        shared = Locked(Shared(busy: Array(repeating: -1, count: threads)))
        shares = Locked(Array(repeating: 0, count: threads))
    }

    /// One thread's side: its share, and slots it gave up whose requests have not finished yet.
    struct Share {
        let thread: Int
        var cap: Int
        let floor: Int
        var owed = 0
        /// Busy fraction, in thousandths, smoothed: each window counts a quarter.
        var busy = -1
        var windowStart: UInt64
        var idleAtStart: UInt64

        init(thread: Int, cap: Int, now: UInt64, idle: UInt64) {
            self.thread = thread
            self.cap = cap
            floor = max(1, cap / 4)
            windowStart = now
            idleAtStart = idle
        }

        /// Called as the thread goes round its loop; `idle` is the target's idle total, `inFlight` the thread's
        /// requests in flight.
        @inline(__always)
        mutating func update(_ balancer: SlotBalancer, now: UInt64, idle: UInt64, inFlight: Int) {
            guard now &- windowStart >= SlotBalancer.window else { return }
            let span = now &- windowStart
            let last = 1000 - Int(min(span, idle &- idleAtStart) * 1000 / span)
            busy = busy < 0 ? last : (3 * busy + last) / 4
            windowStart = now
            idleAtStart = idle
            balancer.shared.withLock { s in
                s.busy[thread] = busy
                var sum = 0, known = 0
                for (t, b) in s.busy.enumerated() where t != thread && b >= 0 {
                    sum += b
                    known += 1
                }
                guard known > 0 else { return }
                let mean = sum / known  // the other threads'
                if owed > 0 && inFlight <= cap {
                    s.spare += owed
                    owed = 0
                }
                if busy > mean + SlotBalancer.margin && cap > floor {
                    cap -= 1
                    if inFlight <= cap { s.spare += 1 } else { owed += 1 }
                } else if busy <= mean && s.spare > 0 {
                    cap += s.spare
                    s.spare = 0
                }
            }
        }
    }
}
