import CQuorumSupport
import Synchronization
import SyncPrimitives

#if canImport(Glibc)
import Glibc
#endif

/// Size-classed buffers from a jemalloc arena of the pool's own, with a per-thread cache per size class.
///
/// How it is synchronized:
/// - **Per-thread caches.** Each thread that touches a pool gets a cache (found through one initial-exec
///   thread-local load). Acquire pops from the cache's bin for the size class, release pushes onto the releasing
///   thread's bin: no lock and no atomic read-modify-write. The counters in the cache are written by its thread
///   only, with relaxed atomic stores, so ``statistics()`` can read them from any thread.
/// - **Cross-thread release.** A buffer may be released on any thread: it joins that thread's cache. A bin that
///   overflows moves half of its buffers, as one batch under one lock, to the pool's shared free list; a thread
///   whose bin is empty takes a batch back from it before asking jemalloc. The lock is taken once per batch, never
///   per buffer.
/// - **Bounds.** A bin holds at most ``Configuration/maxBuffersPerClass`` buffers and at most
///   ``Configuration/bytesPerClass`` bytes; a thread's cache holds at most
///   ``Configuration/perThreadCacheBytes``; all thread caches together hold at most
///   ``Configuration/totalThreadCacheBytes`` (reserved from a shared atomic budget in chunks, so the atomic is
///   touched once per chunk, not per buffer); the shared free lists hold at most
///   ``Configuration/sharedFreeListBytes``. Past any bound buffers go back to jemalloc, and the arena's decay
///   returns the pages to the system, so an idle pool gives its memory back. A thread's cache is flushed when the
///   thread exits, and ``trim()`` flushes the caller's cache and the shared lists on demand.
public final class BufferPool: @unchecked Sendable {
    /// Limits and tuning of a pool.
    public struct Configuration: Sendable, Equatable {
        /// Most bytes one thread's cache holds across all size classes.
        public var perThreadCacheBytes: Int
        /// Most bytes all threads' caches of this pool hold together.
        public var totalThreadCacheBytes: Int
        /// Most bytes the shared free lists (the cross-thread return path) hold.
        public var sharedFreeListBytes: Int
        /// Most buffers one thread caches per size class.
        public var maxBuffersPerClass: Int
        /// Most bytes one thread caches per size class (at least one buffer of the class is always allowed).
        public var bytesPerClass: Int
        /// jemalloc dirty/muzzy decay time of the pool's arena: how soon freed pages return to the system.
        public var decayMilliseconds: Int

        public init(
            perThreadCacheBytes: Int = 4 << 20,
            totalThreadCacheBytes: Int = 64 << 20,
            sharedFreeListBytes: Int = 16 << 20,
            maxBuffersPerClass: Int = 128,
            bytesPerClass: Int = 256 << 10,
            decayMilliseconds: Int = 1000
        ) {
            self.perThreadCacheBytes = perThreadCacheBytes
            self.totalThreadCacheBytes = totalThreadCacheBytes
            self.sharedFreeListBytes = sharedFreeListBytes
            self.maxBuffersPerClass = maxBuffersPerClass
            self.bytesPerClass = bytesPerClass
            self.decayMilliseconds = decayMilliseconds
        }

        /// The defaults: 4 MiB per thread, 64 MiB over all threads, 16 MiB shared, 128 buffers or 256 KiB per class.
        public static let `default` = Configuration()
    }

    /// The process-wide pool the store's values live in.
    public static let shared = BufferPool()

    @usableFromInline let _id: Int
    @usableFromInline let _flags: Int32
    /// The jemalloc arena this pool allocates from.
    public let arena: UInt32
    public let configuration: Configuration
    @usableFromInline let _capacities: [Int]
    let _shared: Locked<_SharedFreeLists>
    /// Bytes reserved by all thread caches from `totalThreadCacheBytes`.
    let _reservedBytes = Atomic<Int>(0)
    @usableFromInline static let _reserveChunk = 256 << 10

    /// Creates a pool with its own jemalloc arena.
    public init(configuration: Configuration = .default) {
        precondition(configuration.maxBuffersPerClass >= 2, "maxBuffersPerClass must be at least 2")
        self.configuration = configuration
        self.arena = _Jemalloc.createArena()
        _Jemalloc.setDecay(arena: arena, milliseconds: configuration.decayMilliseconds)
        self._flags = _Jemalloc.flags(arena: arena)
        self._capacities = (0..<SizeClass.count).map { index in
            let size = SizeClass.size(ofIndex: index)
            return max(1, min(configuration.maxBuffersPerClass, configuration.bytesPerClass / size))
        }
        self._shared = Locked(_SharedFreeLists())
        self._id = _Registry.register()
        _Registry.setPool(_id, Unmanaged.passUnretained(self))
    }

    deinit {
        _Registry.retire(self)
    }

    // MARK: - Acquire and release

    /// A buffer of at least `count` bytes (its ``PoolBuffer/count`` is `count`), uninitialized.
    @inlinable
    public func acquire(count: Int) -> PoolBuffer { _acquire(count: count, shareable: false) }

    /// A shareable buffer of at least `count` bytes, uninitialized, with one reference: ``share(_:)`` hands out
    /// more handles to it instead of copies. It takes 16 bytes more than a plain buffer (the reference count).
    @inlinable
    public func acquireShareable(count: Int) -> PoolBuffer { _acquire(count: count, shareable: true) }

    /// Another handle to `buffer`'s bytes, to be released on its own: the same storage with one more reference if
    /// the buffer is shareable (nothing copied, one atomic increment), else a shareable copy.
    @inlinable
    public func share(_ buffer: PoolBuffer) -> PoolBuffer {
        guard buffer.isShareable else {
            return buffer.withUnsafeBytes { _filled(acquireShareable(count: $0.count), with: $0) }
        }
        buffer._checkLive()
        _ = qb_fetch_add(_PoolDebug.referenceCount(of: buffer._payload), 1)
        _bump(_cache().pointee.counters + _Counter.shares, by: 1)
        return buffer
    }

    @inlinable @inline(__always)
    func _acquire(count: Int, shareable: Bool) -> PoolBuffer {
        precondition(count >= 0 && count <= Int(UInt32.max) - 64, "buffer size out of range (0 ... 4 GiB)")
        let cache = _cache()
        let total = count + (shareable ? _PoolDebug.sharedHeaderSize : _PoolDebug.headerSize)
        guard let cls = SizeClass.index(for: total) else {
            return _acquireLarge(count: count, shareable: shareable, cache: cache)
        }
        let size = SizeClass._size(ofIndex: cls)
        let bin = cache.pointee.bins + cls
        let block: UnsafeMutableRawPointer
        if bin.pointee.count > 0 {
            bin.pointee.count &-= 1
            block = bin.pointee.items[bin.pointee.count]
            cache.pointee.cachedBytes &-= size
        } else {
            block = _refill(cache: cache, classIndex: cls)
        }
        let counters = cache.pointee.counters
        _bump(counters + _Counter.acquires, by: 1)
        _bump(counters + _Counter.bytesAcquired, by: Int64(truncatingIfNeeded: size))
        return _handOut(block: block, classIndex: cls, count: count, shareable: shareable)
    }

    /// A buffer holding a copy of `bytes`.
    @inlinable
    public func acquire(copying bytes: UnsafeRawBufferPointer) -> PoolBuffer {
        _filled(acquire(count: bytes.count), with: bytes)
    }

    @inlinable @inline(__always)
    func _filled(_ buffer: PoolBuffer, with bytes: UnsafeRawBufferPointer) -> PoolBuffer {
        if let base = bytes.baseAddress, bytes.count > 0 {
            buffer._payload.copyMemory(from: base, byteCount: bytes.count)
        }
        return buffer
    }

    /// A buffer holding a copy of `bytes`.
    public func acquire(copying bytes: [UInt8]) -> PoolBuffer {
        bytes.withUnsafeBytes { acquire(copying: $0) }
    }

    /// A buffer holding a copy of `other`'s bytes.
    @inlinable
    public func acquire(copyOf other: PoolBuffer) -> PoolBuffer {
        other.withUnsafeBytes { acquire(copying: $0) }
    }

    /// Returns `buffer` to the pool. Any thread may release any buffer of this pool; each handle exactly once. A
    /// shared buffer's storage returns with the release of its last handle.
    @inlinable
    public func release(_ buffer: PoolBuffer) {
        precondition(buffer._pool == _id, "PoolBuffer released to a pool that did not hand it out")
        if buffer.isShareable {
            buffer._checkLive()
            if qb_fetch_add(_PoolDebug.referenceCount(of: buffer._payload), -1) > 1 { return }
        }
        let block = _takeBack(buffer)
        let cache = _cache()
        let cls = Int(buffer._classIndex)
        guard cls >= 0 else {
            _releaseLarge(block: block, total: buffer.count + buffer._headerSize, cache: cache)
            return
        }
        let size = SizeClass._size(ofIndex: cls)
        let counters = cache.pointee.counters
        _bump(counters + _Counter.releases, by: 1)
        _bump(counters + _Counter.bytesReleased, by: Int64(truncatingIfNeeded: size))
        let bin = cache.pointee.bins + cls
        if bin.pointee.count < bin.pointee.capacity,
            cache.pointee.cachedBytes &+ size <= cache.pointee.reservedBytes
        {
            bin.pointee.items[bin.pointee.count] = block
            bin.pointee.count &+= 1
            cache.pointee.cachedBytes &+= size
        } else {
            _releaseSlow(block: block, cache: cache, classIndex: cls)
        }
    }

    // MARK: - Fast-path helpers

    @inlinable @inline(__always)
    func _bump(_ counter: UnsafeMutablePointer<Int64>, by delta: Int64) {
        qb_store_relaxed(counter, qb_load_relaxed(counter) &+ delta)
    }

    @inlinable @inline(__always)
    func _cache() -> UnsafeMutablePointer<_ThreadCache> {
        if let raw = qb_tls_pool_table_get() {
            let table = raw.assumingMemoryBound(to: UInt.self)
            if _id < Int(bitPattern: table[0]),
                let cache = UnsafeMutableRawPointer(bitPattern: table[1 &+ _id])
            {
                return cache.assumingMemoryBound(to: _ThreadCache.self)
            }
        }
        return _makeCache()
    }

    @inlinable @inline(__always)
    func _handOut(block: UnsafeMutableRawPointer, classIndex: Int, count: Int, shareable: Bool) -> PoolBuffer {
        let payload = block + (shareable ? _PoolDebug.sharedHeaderSize : _PoolDebug.headerSize)
        let poolID = Int16(truncatingIfNeeded: shareable ? _id | PoolBuffer._sharedFlag : _id)
        if shareable { _PoolDebug.referenceCount(of: payload).pointee = 1 }
        #if DEBUG
        let header = block.assumingMemoryBound(to: Int64.self)
        let generation = qb_load_relaxed(header) | 1
        qb_store_release(header, generation)
        return PoolBuffer(
            _payload: payload, classIndex: Int16(truncatingIfNeeded: classIndex), poolID: poolID,
            count: count, generation: generation)
        #else
        return PoolBuffer(_payload: payload, classIndex: Int16(truncatingIfNeeded: classIndex), poolID: poolID, count: count)
        #endif
    }

    /// The block behind `buffer`; in a debug build, traps unless this is the buffer's first release.
    @inlinable @inline(__always)
    func _takeBack(_ buffer: PoolBuffer) -> UnsafeMutableRawPointer {
        #if DEBUG
        let header = (buffer._payload - buffer._headerSize).assumingMemoryBound(to: Int64.self)
        let next = buffer._generation &+ 1
        let previous = qb_exchange(header, next)
        if previous != buffer._generation {
            fatalError(
                "PoolBuffer released twice or after release (storage \(buffer.storageID), generation \(buffer._generation), found \(previous))"
            )
        }
        #endif
        return buffer._payload - buffer._headerSize
    }

    // MARK: - Slow paths

    @usableFromInline
    func _makeCache() -> UnsafeMutablePointer<_ThreadCache> {
        _ThreadCache.install(for: self)
    }

    /// Bin empty: a batch from the shared free list, else a fresh block from jemalloc.
    @usableFromInline
    func _refill(cache: UnsafeMutablePointer<_ThreadCache>, classIndex cls: Int) -> UnsafeMutableRawPointer {
        _bump(cache.pointee.counters + _Counter.misses, by: 1)
        let bin = cache.pointee.bins + cls
        let size = SizeClass._size(ofIndex: cls)
        // Take a batch, but no more than the cache's reservation holds (plus the one handed out at once).
        _reserve(cache: cache, adding: max(1, bin.pointee.capacity / 2) * size)
        let room = max(0, (cache.pointee.reservedBytes - cache.pointee.cachedBytes) / size)
        let want = min(max(1, bin.pointee.capacity / 2), room + 1)
        let moved = _shared.withLock { lists -> Int in
            lists.take(classIndex: cls, size: size, upTo: want, into: bin.pointee.items)
        }
        if moved > 0 {
            // The batch is now in the bin; the caller pops one of them.
            bin.pointee.count = moved - 1
            cache.pointee.cachedBytes &+= (moved - 1) * size
            return bin.pointee.items[moved - 1]
        }
        let block = _Jemalloc.allocate(size, flags: _flags)
        #if DEBUG
        block.storeBytes(of: Int64(0), as: Int64.self)
        #endif
        return block
    }

    /// Bin full, or the thread's byte budget exhausted: move the bin's oldest half to the shared free list (or to
    /// jemalloc when that is full), then cache `block` if the bounds now allow it, else free it.
    @usableFromInline
    func _releaseSlow(block: UnsafeMutableRawPointer, cache: UnsafeMutablePointer<_ThreadCache>, classIndex cls: Int) {
        let size = SizeClass._size(ofIndex: cls)
        let bin = cache.pointee.bins + cls
        if bin.pointee.count >= bin.pointee.capacity {
            _flush(cache: cache, classIndex: cls, count: max(1, bin.pointee.capacity / 2))
        }
        if cache.pointee.cachedBytes + size > cache.pointee.reservedBytes {
            _reserve(cache: cache, adding: size)
        }
        if bin.pointee.count < bin.pointee.capacity, cache.pointee.cachedBytes + size <= cache.pointee.reservedBytes {
            bin.pointee.items[bin.pointee.count] = block
            bin.pointee.count += 1
            cache.pointee.cachedBytes += size
        } else {
            _Jemalloc.deallocate(block, size: size, flags: _flags)
        }
    }

    /// Moves the `count` oldest buffers of a bin out of the thread's cache, in one batch.
    func _flush(cache: UnsafeMutablePointer<_ThreadCache>, classIndex cls: Int, count: Int) {
        let bin = cache.pointee.bins + cls
        let n = min(count, bin.pointee.count)
        guard n > 0 else { return }
        let size = SizeClass._size(ofIndex: cls)
        let items = bin.pointee.items
        let flags = _flags
        let limit = configuration.sharedFreeListBytes
        _shared.withLock { lists in
            lists.put(classIndex: cls, size: size, from: items, count: n, limit: limit) { block in
                _Jemalloc.deallocate(block, size: size, flags: flags)
            }
        }
        let remaining = bin.pointee.count - n
        memmove(items, items + n, remaining * MemoryLayout<UnsafeMutableRawPointer>.stride)
        bin.pointee.count = remaining
        cache.pointee.cachedBytes -= n * size
        _reserve(cache: cache)
    }

    /// Brings the cache's reservation from the pool-wide budget in line with what it caches (plus `adding`):
    /// grows it by whole chunks when the pool's total allows, and gives back what is more than a chunk too much.
    @usableFromInline
    func _reserve(cache: UnsafeMutablePointer<_ThreadCache>, adding: Int = 0) {
        let chunk = Self._reserveChunk
        let want = min(configuration.perThreadCacheBytes, cache.pointee.cachedBytes + adding)
        var reserved = cache.pointee.reservedBytes
        if want > reserved {
            let grow = ((want - reserved + chunk - 1) / chunk) * chunk
            let grant = min(grow, configuration.perThreadCacheBytes - reserved)
            guard grant > 0 else { return }
            let (total, _) = _reservedBytes.add(grant, ordering: .relaxed)
            if total > configuration.totalThreadCacheBytes {
                _reservedBytes.subtract(grant, ordering: .relaxed)
            } else {
                reserved += grant
            }
        } else if reserved - want > 2 * chunk {
            let give = ((reserved - want) / chunk - 1) * chunk
            _reservedBytes.subtract(give, ordering: .relaxed)
            reserved -= give
        }
        cache.pointee.reservedBytes = reserved
    }

    @usableFromInline
    func _acquireLarge(count: Int, shareable: Bool, cache: UnsafeMutablePointer<_ThreadCache>) -> PoolBuffer {
        let total = count + (shareable ? _PoolDebug.sharedHeaderSize : _PoolDebug.headerSize)
        let block = _Jemalloc.allocate(total, flags: _flags)
        #if DEBUG
        block.storeBytes(of: Int64(0), as: Int64.self)
        #endif
        _bump(cache.pointee.counters + _Counter.acquires, by: 1)
        _bump(cache.pointee.counters + _Counter.misses, by: 1)
        _bump(cache.pointee.counters + _Counter.bytesAcquired, by: Int64(total))
        return _handOut(block: block, classIndex: -1, count: count, shareable: shareable)
    }

    @usableFromInline
    func _releaseLarge(block: UnsafeMutableRawPointer, total: Int, cache: UnsafeMutablePointer<_ThreadCache>) {
        _bump(cache.pointee.counters + _Counter.releases, by: 1)
        _bump(cache.pointee.counters + _Counter.bytesReleased, by: Int64(total))
        _Jemalloc.deallocate(block, size: total, flags: _flags)
    }

    // MARK: - Maintenance and statistics

    /// Returns the calling thread's cached buffers of this pool and the shared free lists to jemalloc, and purges
    /// the arena's unused pages: what an idle pool does to give its memory back at once.
    public func trim() {
        let cache = _cache()
        for cls in 0..<SizeClass.count {
            let bin = cache.pointee.bins + cls
            let size = SizeClass._size(ofIndex: cls)
            for i in 0..<bin.pointee.count {
                _Jemalloc.deallocate(bin.pointee.items[i], size: size, flags: _flags)
            }
            cache.pointee.cachedBytes -= bin.pointee.count * size
            bin.pointee.count = 0
        }
        _reserve(cache: cache)
        _drainShared()
        _Jemalloc.purge(arena: arena)
    }

    func _drainShared() {
        let flags = _flags
        _shared.withLock { lists in lists.drain { block, size in _Jemalloc.deallocate(block, size: size, flags: flags) } }
    }

    /// The pool's counters summed over every thread that used it, and jemalloc's process-wide figures.
    public func statistics() -> BufferPoolStatistics {
        var stats = _Registry.counters(of: self)
        stats.bytesShared = _shared.withLock { $0.bytes }
        stats.bytesCached += stats.bytesShared
        let je = JemallocStatistics.current()
        stats.jemallocAllocated = je.allocated
        stats.jemallocActive = je.active
        stats.jemallocResident = je.resident
        stats.jemallocMapped = je.mapped
        stats.arenaResident = _Jemalloc.arenaResident(arena)
        return stats
    }

    /// The per-class cache capacity (in buffers) of every thread's bin for size class `index`.
    public func cacheCapacity(ofClass index: Int) -> Int { _capacities[index] }
}

/// A snapshot of a pool's counters, summed over threads, with jemalloc's process-wide figures.
public struct BufferPoolStatistics: Sendable, Equatable, Codable {
    /// Buffers handed out.
    public var acquires: Int = 0
    /// Buffers given back (a shared buffer once, with its last handle).
    public var releases: Int = 0
    /// Handles handed out by ``BufferPool/share(_:)`` to a shareable buffer instead of a copy.
    public var shares: Int = 0
    /// Acquires served from a thread's cache without a lock or a call into jemalloc.
    public var cacheHits: Int = 0
    /// Bytes (by size class) of the buffers handed out and not yet released.
    public var bytesInUse: Int = 0
    /// Bytes held in thread caches and shared free lists, ready for reuse.
    public var bytesCached: Int = 0
    /// The part of ``bytesCached`` in the shared free lists (the cross-thread return path).
    public var bytesShared: Int = 0
    /// jemalloc `stats.allocated` (whole process).
    public var jemallocAllocated: Int = 0
    /// jemalloc `stats.active` (whole process).
    public var jemallocActive: Int = 0
    /// jemalloc `stats.resident` (whole process).
    public var jemallocResident: Int = 0
    /// jemalloc `stats.mapped` (whole process).
    public var jemallocMapped: Int = 0
    /// jemalloc `stats.arenas.<i>.resident` for the pool's own arena.
    public var arenaResident: Int = 0

    public init() {}

    /// The figures that count events (buffers and bytes handed out, given back, shared, served from a cache); the
    /// rest (bytes cached, jemalloc's) are gauges of the moment.
    static var counts: [WritableKeyPath<BufferPoolStatistics, Int>] { [\.acquires, \.releases, \.shares, \.cacheHits, \.bytesInUse] }

    /// The counts since `start`, an earlier snapshot of the same scope (the pool, or one thread); the gauges as now.
    public func since(_ start: BufferPoolStatistics) -> BufferPoolStatistics {
        var d = self
        for k in Self.counts { d[keyPath: k] -= start[keyPath: k] }
        return d
    }

    /// These gauges with the counts of `other`.
    public func withCounts(of other: BufferPoolStatistics) -> BufferPoolStatistics {
        var s = self
        for k in Self.counts { s[keyPath: k] = other[keyPath: k] }
        return s
    }

    /// Buffers handed out and not yet released.
    public var buffersInUse: Int { acquires - releases }
    /// Fraction of acquires served from a thread cache.
    public var hitRate: Double { acquires == 0 ? 0 : Double(cacheHits) / Double(acquires) }
}
