#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a `pthread_mutex_t`, for slow paths and statistics (never per request).
///
/// Why not `Synchronization.Mutex`: ThreadSanitizer intercepts `pthread_mutex_lock` and so sees the
/// happens-before edges this lock creates; it does not see inside the standard library's futex-based `Mutex`,
/// and reports every access it guards as a race. `scripts/tsan.sh` runs the concurrency tests under TSan.
public final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // Adaptive: a contended lock spins briefly before sleeping. The sections it guards are short (a batch of
        // pointers), and sleeping on each contention costs microseconds of futex and scheduler time.
        var attr = pthread_mutexattr_t()
        pthread_mutexattr_init(&attr)
        #if canImport(Glibc)
        pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        #endif
        let rc = pthread_mutex_init(mutex, &attr)
        pthread_mutexattr_destroy(&attr)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    @inlinable
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body(&valueStorage)
    }

    /// Runs `body` with the value, without the lock: for an owner that knows no other thread can reach it (the
    /// simulator's one thread), where the lock is pure cost.
    @inlinable
    public func withoutLocking<R>(_ body: (inout Value) -> R) -> R {
        body(&valueStorage)
    }

    @usableFromInline
    var valueStorage: Value {
        _read { yield value }
        _modify { yield &value }
    }

    @usableFromInline
    func lock() {
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed: \(rc)")
    }

    @usableFromInline
    func unlock() {
        let rc = pthread_mutex_unlock(mutex)
        precondition(rc == 0, "pthread_mutex_unlock failed: \(rc)")
    }
}
