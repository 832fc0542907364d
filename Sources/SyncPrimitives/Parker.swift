import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Lets one consumer thread sleep until a producer has work for it, or until a deadline.
///
/// The consumer announces `sleeping`, re-checks its queues, then waits; a producer that publishes work checks
/// `sleeping` (sequentially consistent on both sides, so a wake-up is never lost) and only then takes the lock.
/// A busy consumer is never woken through the lock: producers see it awake and do nothing.
public final class Parker: @unchecked Sendable {
    private let sleeping = Atomic<Bool>(false)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var permit = false

    public init() {
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    /// Consumer: sleeps until ``unpark()`` or until `deadline` (monotonic ns), unless `hasWork()` — checked after
    /// announcing sleep — says there is work already.
    public func park(until deadline: UInt64, hasWork: () -> Bool) {
        sleeping.store(true, ordering: .sequentiallyConsistent)
        // Orders the store above before the queue loads in hasWork (a Dekker pair with unpark's fence).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if hasWork() {
            sleeping.store(false, ordering: .relaxed)
            return
        }
        pthread_mutex_lock(mutex)
        if !permit {
            var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            _ = pthread_cond_timedwait(cond, mutex, &ts)
        }
        permit = false
        pthread_mutex_unlock(mutex)
        sleeping.store(false, ordering: .relaxed)
    }

    /// Producer: wakes the consumer if it sleeps or is about to.
    @inline(__always)
    public func unpark() {
        // Orders the producer's publishing store before this load (see park).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleeping.load(ordering: .sequentiallyConsistent) {
            pthread_mutex_lock(mutex)
            permit = true
            pthread_cond_signal(cond)
            pthread_mutex_unlock(mutex)
        }
    }
}

/// Monotonic time in nanoseconds (`CLOCK_MONOTONIC`).
@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Sleeps until `deadline` (monotonic ns), at most a second at a time.
public func sleep(until deadline: UInt64) {
    let now = monotonicNanos()
    if deadline > now { usleep(UInt32(min(1_000_000, (deadline - now) / 1000))) }
}
