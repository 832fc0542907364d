import CQuorumSupport
import Synchronization
import SyncPrimitives

#if canImport(Glibc)
import Glibc
#endif

/// The cached blocks of one size class in one thread's cache: a LIFO stack.
@usableFromInline
struct _Bin {
    @usableFromInline var items: UnsafeMutablePointer<UnsafeMutableRawPointer>
    @usableFromInline var count: Int
    @usableFromInline var capacity: Int
}

/// Slots of a thread cache's counter array. Written by the owning thread only (relaxed stores), read by any.
@usableFromInline
enum _Counter {
    @inlinable static var acquires: Int { 0 }
    @inlinable static var releases: Int { 1 }
    @inlinable static var misses: Int { 2 }
    @inlinable static var bytesAcquired: Int { 3 }
    @inlinable static var bytesReleased: Int { 4 }
    @inlinable static var cachedBytes: Int { 5 }
    @inlinable static var shares: Int { 6 }
    @inlinable static var count: Int { 7 }
}

/// One thread's cache for one pool. Lives in raw memory owned by the thread; only that thread touches its bins.
/// Created on the thread's first use of the pool, freed when the thread exits (see `_Registry`).
@usableFromInline
struct _ThreadCache {
    @usableFromInline var bins: UnsafeMutablePointer<_Bin>
    @usableFromInline var counters: UnsafeMutablePointer<Int64>
    /// Bytes this cache may hold, reserved from the pool's `totalThreadCacheBytes`.
    @usableFromInline var reservedBytes: Int
    var poolID: Int
    /// Cleared when the pool is deinitialized before the thread exits.
    var poolAlive: Bool

    /// Bytes cached in the bins (published for statistics with a relaxed store).
    @usableFromInline var cachedBytes: Int {
        get { Int(qb_load_relaxed(counters + _Counter.cachedBytes)) }
        nonmutating set { qb_store_relaxed(counters + _Counter.cachedBytes, Int64(newValue)) }
    }

    /// Creates the calling thread's cache for `pool`, records it in the thread's table and in the registry.
    static func install(for pool: BufferPool) -> UnsafeMutablePointer<_ThreadCache> {
        let capacities = pool._capacities
        let bins = UnsafeMutablePointer<_Bin>.allocate(capacity: SizeClass.count)
        let slots = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: capacities.reduce(0, +))
        var offset = 0
        for (cls, capacity) in capacities.enumerated() {
            (bins + cls).initialize(to: _Bin(items: slots + offset, count: 0, capacity: capacity))
            offset += capacity
        }
        let counters = UnsafeMutablePointer<Int64>.allocate(capacity: _Counter.count)
        counters.initialize(repeating: 0, count: _Counter.count)
        let cache = UnsafeMutablePointer<_ThreadCache>.allocate(capacity: 1)
        cache.initialize(
            to: _ThreadCache(bins: bins, counters: counters, reservedBytes: 0, poolID: pool._id, poolAlive: true))
        _ThreadTable.set(cache, for: pool._id)
        _Registry.add(cache, poolID: pool._id)
        return cache
    }

    /// Frees the cache's own memory (not the blocks it caches: flush them first).
    static func free(_ cache: UnsafeMutablePointer<_ThreadCache>) {
        cache.pointee.bins[0].items.deallocate()
        cache.pointee.bins.deallocate()
        cache.pointee.counters.deallocate()
        cache.deallocate()
    }
}

/// The calling thread's table of caches, indexed by pool id: `[capacity, cache0, cache1, …]` in one block, its
/// address in an initial-exec thread-local variable. Registered with a pthread key so that a thread's caches are
/// flushed when it exits.
enum _ThreadTable {
    static func set(_ cache: UnsafeMutablePointer<_ThreadCache>?, for id: Int) {
        var table = qb_tls_pool_table_get()?.assumingMemoryBound(to: UInt.self)
        let capacity = table.map { Int($0[0]) } ?? 0
        if id >= capacity {
            let newCapacity = max(16, (id + 1) * 2)
            let grown = UnsafeMutablePointer<UInt>.allocate(capacity: newCapacity + 1)
            grown.initialize(repeating: 0, count: newCapacity + 1)
            grown[0] = UInt(newCapacity)
            if let old = table {
                (grown + 1).update(from: old + 1, count: capacity)
                old.deallocate()
            }
            table = grown
            qb_tls_pool_table_set(UnsafeMutableRawPointer(grown))
            _ = qb_tls_pool_table_register(UnsafeMutableRawPointer(grown), _threadExit)
        }
        table![1 + id] = UInt(bitPattern: cache)
    }
}

/// Runs when a thread that used a pool exits: its caches go back to their pools (or to jemalloc).
private let _threadExit: @convention(c) (UnsafeMutableRawPointer?) -> Void = { raw in
    guard let raw else { return }
    let table = raw.assumingMemoryBound(to: UInt.self)
    let capacity = Int(table[0])
    for id in 0..<capacity {
        if let cache = UnsafeMutablePointer<_ThreadCache>(bitPattern: table[1 + id]) {
            _Registry.threadExited(cache)
        }
    }
    table.deallocate()
}

/// Blocks returned from thread caches in batches, per size class, waiting for a thread to take a batch back.
struct _SharedFreeLists {
    var lists: [[UInt]] = Array(repeating: [], count: SizeClass.count)
    var bytes: Int = 0

    /// Moves up to `upTo` blocks of class `classIndex` to `into`; returns how many.
    mutating func take(
        classIndex: Int, size: Int, upTo: Int, into: UnsafeMutablePointer<UnsafeMutableRawPointer>
    ) -> Int {
        let available = lists[classIndex].count
        let n = min(upTo, available)
        guard n > 0 else { return 0 }
        lists[classIndex].withUnsafeBufferPointer { all in
            for i in 0..<n { into[i] = UnsafeMutableRawPointer(bitPattern: all[available - n + i])! }
        }
        lists[classIndex].removeLast(n)
        bytes -= n * size
        return n
    }

    /// Keeps as many of the `count` blocks as the byte limit allows; hands the rest to `free`.
    mutating func put(
        classIndex: Int, size: Int, from items: UnsafeMutablePointer<UnsafeMutableRawPointer>, count: Int,
        limit: Int, free: (UnsafeMutableRawPointer) -> Void
    ) {
        let keep = max(0, min(count, (limit - bytes) / size))
        for i in 0..<keep { lists[classIndex].append(UInt(bitPattern: items[i])) }
        for i in keep..<count { free(items[i]) }
        bytes += keep * size
    }

    mutating func drain(_ free: (UnsafeMutableRawPointer, Int) -> Void) {
        for cls in 0..<lists.count {
            let size = SizeClass.size(ofIndex: cls)
            for address in lists[cls] { free(UnsafeMutableRawPointer(bitPattern: address)!, size) }
            lists[cls].removeAll(keepingCapacity: false)
        }
        bytes = 0
    }
}

/// Process-wide bookkeeping of pools and their thread caches. Touched only on slow paths: a thread's first use
/// of a pool, a thread's exit, a pool's deinit, and statistics. One lock orders them.
enum _Registry {
    struct PoolEntry {
        var pool: Unmanaged<BufferPool>?
        var caches: [UInt] = []
        /// Counters folded in from caches whose threads have exited.
        var retired: [Int64] = Array(repeating: 0, count: _Counter.count)
    }

    struct State {
        var nextID = 0
        var pools: [Int: PoolEntry] = [:]
    }

    static let lock = Locked(State())

    static func register() -> Int {
        lock.withLock { state in
            let id = state.nextID
            precondition(id < PoolBuffer._sharedFlag, "at most 16384 buffer pools per process")
            state.nextID += 1
            state.pools[id] = PoolEntry()
            return id
        }
    }

    static func setPool(_ id: Int, _ pool: Unmanaged<BufferPool>) {
        lock.withLock { $0.pools[id]?.pool = pool }
    }

    static func add(_ cache: UnsafeMutablePointer<_ThreadCache>, poolID: Int) {
        lock.withLock { $0.pools[poolID]?.caches.append(UInt(bitPattern: cache)) }
    }

    /// A thread exits: flush its cache into the pool (shared list, else jemalloc), fold its counters, free it.
    static func threadExited(_ cache: UnsafeMutablePointer<_ThreadCache>) {
        lock.withLock { state in
            let id = cache.pointee.poolID
            if cache.pointee.poolAlive, let pool = state.pools[id]?.pool?.takeUnretainedValue() {
                for cls in 0..<SizeClass.count {
                    pool._flush(cache: cache, classIndex: cls, count: cache.pointee.bins[cls].count)
                }
                pool._reservedBytes.subtract(cache.pointee.reservedBytes, ordering: .relaxed)
                cache.pointee.reservedBytes = 0
                fold(cache, into: &state.pools[id]!)
            }
            state.pools[id]?.caches.removeAll { $0 == UInt(bitPattern: cache) }
        }
        _ThreadCache.free(cache)
    }

    private static func fold(_ cache: UnsafeMutablePointer<_ThreadCache>, into entry: inout PoolEntry) {
        for slot in 0..<_Counter.count where slot != _Counter.cachedBytes {
            entry.retired[slot] += qb_load_relaxed(cache.pointee.counters + slot)
        }
    }

    /// The pool is going away: return every cached block to jemalloc, orphan its caches (their threads free them
    /// on exit), and destroy the arena if no buffer is still out.
    static func retire(_ pool: BufferPool) {
        let callerCache = pool._currentCacheIfAny()
        let outstanding: Int64 = lock.withLock { state in
            guard var entry = state.pools.removeValue(forKey: pool._id) else { return 0 }
            for address in entry.caches {
                let cache = UnsafeMutablePointer<_ThreadCache>(bitPattern: address)!
                for cls in 0..<SizeClass.count {
                    let bin = cache.pointee.bins + cls
                    let size = SizeClass.size(ofIndex: cls)
                    for i in 0..<bin.pointee.count { _Jemalloc.deallocate(bin.pointee.items[i], size: size, flags: pool._flags) }
                    bin.pointee.count = 0
                }
                cache.pointee.cachedBytes = 0
                cache.pointee.poolAlive = false
                fold(cache, into: &entry)
            }
            return entry.retired[_Counter.acquires] - entry.retired[_Counter.releases]
        }
        pool._drainShared()
        if let callerCache {
            _ThreadTable.set(nil, for: pool._id)
            _ThreadCache.free(callerCache)
        }
        if outstanding == 0 {
            _Jemalloc.destroy(arena: pool.arena)
        }
    }

    static func counters(of pool: BufferPool) -> BufferPoolStatistics {
        lock.withLock { state in
            guard let entry = state.pools[pool._id] else { return BufferPoolStatistics() }
            var sums = entry.retired
            sums[_Counter.cachedBytes] = 0
            for address in entry.caches {
                let cache = UnsafeMutablePointer<_ThreadCache>(bitPattern: address)!
                for slot in 0..<_Counter.count { sums[slot] += qb_load_relaxed(cache.pointee.counters + slot) }
            }
            var stats = BufferPoolStatistics()
            stats.acquires = Int(sums[_Counter.acquires])
            stats.releases = Int(sums[_Counter.releases])
            stats.shares = Int(sums[_Counter.shares])
            stats.cacheHits = Int(sums[_Counter.acquires] - sums[_Counter.misses])
            stats.bytesInUse = Int(sums[_Counter.bytesAcquired] - sums[_Counter.bytesReleased])
            stats.bytesCached = Int(sums[_Counter.cachedBytes])
            return stats
        }
    }
}

extension BufferPool {
    /// The calling thread's counts alone (zero if it never used the pool): what a single-threaded run did when
    /// several run in one process (a sweep's virtual-time points, one per thread), with ``BufferPoolStatistics/since(_:)``.
    /// Only the counts are filled in; bytes in use are those this thread acquired less those it released.
    public func threadStatistics() -> BufferPoolStatistics {
        var stats = BufferPoolStatistics()
        guard let cache = _currentCacheIfAny() else { return stats }
        func count(_ slot: Int) -> Int { Int(qb_load_relaxed(cache.pointee.counters + slot)) }
        stats.acquires = count(_Counter.acquires)
        stats.releases = count(_Counter.releases)
        stats.shares = count(_Counter.shares)
        stats.cacheHits = count(_Counter.acquires) - count(_Counter.misses)
        stats.bytesInUse = count(_Counter.bytesAcquired) - count(_Counter.bytesReleased)
        return stats
    }

    /// The calling thread's cache of this pool, without creating one.
    func _currentCacheIfAny() -> UnsafeMutablePointer<_ThreadCache>? {
        guard let raw = qb_tls_pool_table_get() else { return nil }
        let table = raw.assumingMemoryBound(to: UInt.self)
        guard _id < Int(table[0]) else { return nil }
        return UnsafeMutablePointer<_ThreadCache>(bitPattern: table[1 + _id])
    }
}
