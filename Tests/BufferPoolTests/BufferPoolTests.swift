import Foundation
import Synchronization
import SyncPrimitives
import Testing
@testable import BufferPool

/// Runs `body(i)` on `count` new OS threads and waits for all of them (each exits afterwards, so its cache flushes).
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchSemaphore(value: 0)
    for i in 0..<count {
        let thread = Thread {
            body(i)
            done.signal()
        }
        thread.start()
    }
    for _ in 0..<count { done.wait() }
    // Thread-exit destructors run just after `body` returns; give them a moment.
    Thread.sleep(forTimeInterval: 0.05)
}

final class LockedQueue: Sendable {
    let items = Locked<[(PoolBuffer, UInt64)]>([])
}

@Suite("Buffer pool, one thread")
struct BufferPoolSingleThreadTests {
    @Test("a released buffer is handed out again for the same size class")
    func reuse() {
        let pool = BufferPool()
        let a = pool.acquire(count: 100)
        let id = a.storageID
        pool.release(a)
        let b = pool.acquire(count: 105)  // same class (128 B, or 128 B with the debug header)
        #expect(SizeClass.index(for: 100 + _PoolDebug.headerSize) == SizeClass.index(for: 105 + _PoolDebug.headerSize))
        #expect(b.storageID == id)
        let c = pool.acquire(count: 100)
        #expect(c.storageID != id)
        pool.release(b)
        pool.release(c)
    }

    @Test("a shared buffer is one storage: it returns to the pool with its last handle's release")
    func sharing() {
        let pool = BufferPool()
        for size in [8, 256, 3 << 20] {  // a size class, the default value size, and a buffer beyond the classes
            let a = pool.acquireShareable(count: size)
            a.store(UInt64(size))
            #expect(a.isShareable && a.capacity >= size)
            let b = pool.share(a)
            let c = pool.share(b)
            #expect(b.storageID == a.storageID && c.storageID == a.storageID)
            #expect(c.load(as: UInt64.self) == UInt64(size))
            var s = pool.statistics()
            #expect(s.acquires == s.releases + 1 && s.shares >= 2)
            pool.release(a)
            pool.release(c)
            s = pool.statistics()
            #expect(s.buffersInUse == 1, "storage returned while a handle is still out")
            #expect(b.load(as: UInt64.self) == UInt64(size))
            pool.release(b)
            #expect(pool.statistics().buffersInUse == 0)
        }
        // A plain buffer is copied into a shareable one; the copy is shared from then on.
        let plain = pool.acquire(copying: [1, 2, 3, 4, 5, 6, 7, 8])
        let copy = pool.share(plain)
        #expect(copy.storageID != plain.storageID && copy.isShareable && copy.contentEquals(plain))
        let again = pool.share(copy)
        #expect(again.storageID == copy.storageID)
        for x in [plain, copy, again] { pool.release(x) }
        #expect(pool.statistics().buffersInUse == 0)
    }

    @Test("buffers keep their bytes, capacity covers the request")
    func contents() {
        let pool = BufferPool()
        for size in [0, 1, 16, 17, 255, 256, 4096, 100_000, 1 << 20, (1 << 20) + 1, 3 << 20] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ size) }
            let buffer = pool.acquire(copying: bytes)
            #expect(buffer.count == size)
            #expect(buffer.capacity >= size)
            #expect(buffer.bytes == bytes)
            let copy = pool.acquire(copyOf: buffer)
            #expect(copy.contentEquals(buffer))
            pool.release(buffer)
            pool.release(copy)
        }
        let b = pool.acquire(count: 16)
        b.store(UInt64(0xdead_beef_cafe), toByteOffset: 8)
        #expect(b.load(fromByteOffset: 8, as: UInt64.self) == 0xdead_beef_cafe)
        pool.release(b)
    }

    @Test("statistics count exactly what was done")
    func statistics() {
        let pool = BufferPool()
        var held: [PoolBuffer] = []
        for _ in 0..<1000 { held.append(pool.acquire(count: 66)) }
        var s = pool.statistics()
        #expect(s.acquires == 1000 && s.releases == 0)
        let classBytes = SizeClass.roundedSize(for: 66 + _PoolDebug.headerSize)
        #expect(s.bytesInUse == 1000 * classBytes)
        #expect(s.cacheHits == 0)
        for b in held { pool.release(b) }
        held.removeAll()
        s = pool.statistics()
        #expect(s.releases == 1000 && s.bytesInUse == 0 && s.buffersInUse == 0)
        // Everything released is cached: the bin keeps up to its capacity, the overflow went to the shared list.
        #expect(s.bytesCached == 1000 * classBytes)
        let cls = SizeClass.index(for: 66 + _PoolDebug.headerSize)!
        let inBin = (s.bytesCached - s.bytesShared) / classBytes
        #expect(inBin > 0 && inBin <= pool.cacheCapacity(ofClass: cls))
        // Those in the bin are served from it without a lock: cache hits.
        for _ in 0..<inBin { held.append(pool.acquire(count: 66)) }
        s = pool.statistics()
        #expect(s.cacheHits == inBin)
        #expect(s.bytesCached == s.bytesShared)
        for b in held { pool.release(b) }
        #expect(s.jemallocAllocated > 0 && s.jemallocActive >= s.jemallocAllocated)
        #expect(s.jemallocResident > 0 && s.jemallocMapped >= s.jemallocResident)
    }

    @Test("a thread's cache stays within its byte bound; trim empties it")
    func perThreadBound() {
        let config = BufferPool.Configuration(
            perThreadCacheBytes: 1 << 20, totalThreadCacheBytes: 8 << 20, sharedFreeListBytes: 2 << 20)
        let pool = BufferPool(configuration: config)
        for size in [64, 1000, 8000, 60_000, 500_000] {
            let held = (0..<200).map { _ in pool.acquire(count: size) }
            for b in held { pool.release(b) }
            let s = pool.statistics()
            let cls = SizeClass.index(for: size + _PoolDebug.headerSize)!
            let inThreadCache = s.bytesCached - s.bytesShared
            #expect(inThreadCache <= config.perThreadCacheBytes)
            #expect(inThreadCache <= max(1, pool.cacheCapacity(ofClass: cls)) * SizeClass.size(ofIndex: cls))
            #expect(s.bytesShared <= config.sharedFreeListBytes)
            pool.trim()
            #expect(pool.statistics().bytesCached == 0)
        }
    }

    @Test("an idle pool gives its memory back")
    func idleReturnsMemory() {
        let pool = BufferPool(configuration: .init(decayMilliseconds: 0))
        let held = (0..<4096).map { _ in pool.acquire(count: 16 << 10) }  // 64 MiB
        for b in held { b.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 1) } }
        let busy = pool.statistics().arenaResident
        for b in held { pool.release(b) }
        pool.trim()
        let idle = pool.statistics()
        #expect(busy >= 64 << 20)
        #expect(idle.bytesCached == 0 && idle.bytesInUse == 0)
        #expect(idle.arenaResident < busy / 8, "resident \(idle.arenaResident) after trim, \(busy) busy")
    }
}

@Suite("Buffer pool, concurrency")
struct BufferPoolConcurrencyTests {
    @Test("handles to one shared buffer released on many threads return it exactly once")
    func sharingAcrossThreads() {
        let pool = BufferPool()
        let rounds = 2000, threads = 4
        var handles: [[PoolBuffer]] = Array(repeating: [], count: threads)
        for _ in 0..<rounds {
            let v = pool.acquireShareable(count: 256)
            for t in 0..<threads { handles[t].append(t == 0 ? v : pool.share(v)) }
        }
        let group = DispatchGroup()
        for t in 0..<threads {
            let mine = handles[t]
            DispatchQueue.global().async(group: group) {
                for h in mine { pool.release(h) }
            }
        }
        group.wait()
        let s = pool.statistics()
        #expect(s.acquires == rounds && s.releases == rounds && s.buffersInUse == 0)
    }

    /// Producers acquire and stamp each buffer; consumers on other threads check the stamp and release. A buffer
    /// handed out twice while live would carry the wrong stamp; one lost would leave the counts unequal.
    @Test("cross-thread release: every buffer accounted for, none handed out twice")
    func crossThreadRelease() {
        let pool = BufferPool()
        let producers = 3, consumers = 3
        let perProducer = 400_000
        let queues = (0..<consumers).map { _ in LockedQueue() }
        let produced = Atomic<Int>(0)
        let consumed = Atomic<Int>(0)
        let corrupt = Atomic<Int>(0)
        let live = Locked(Set<UInt>())
        let duplicates = Atomic<Int>(0)
        let sampleLive = Atomic<Bool>(true)

        onThreads(producers + consumers) { t in
            if t < producers {
                var batch: [(PoolBuffer, UInt64)] = []
                for seq in 0..<perProducer {
                    let size = [16, 64, 200, 1000, 4096][seq % 5]
                    let b = pool.acquire(count: size)
                    let stamp = UInt64(t) << 32 | UInt64(seq)
                    b.store(stamp)
                    if seq % 64 == 0, sampleLive.load(ordering: .relaxed) {
                        let inserted = live.withLock { $0.insert(b.storageID).inserted }
                        if !inserted { duplicates.add(1, ordering: .relaxed) }
                    }
                    batch.append((b, stamp))
                    if batch.count == 256 || seq == perProducer - 1 {
                        queues[(t + seq) % consumers].items.withLock { $0.append(contentsOf: batch) }
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                produced.add(perProducer, ordering: .releasing)
            } else {
                let q = queues[t - producers]
                while true {
                    let items = q.items.withLock { items -> [(PoolBuffer, UInt64)] in
                        defer { items.removeAll(keepingCapacity: true) }
                        return items
                    }
                    if items.isEmpty {
                        if produced.load(ordering: .acquiring) == producers * perProducer,
                            q.items.withLock({ $0.isEmpty })
                        {
                            break
                        }
                        sched_yield()
                        continue
                    }
                    for (b, stamp) in items {
                        if b.load(as: UInt64.self) != stamp { corrupt.add(1, ordering: .relaxed) }
                        if UInt32(truncatingIfNeeded: stamp) % 64 == 0 {
                            live.withLock { _ = $0.remove(b.storageID) }
                        }
                        pool.release(b)
                    }
                    consumed.add(items.count, ordering: .relaxed)
                }
            }
        }
        let total = producers * perProducer
        #expect(consumed.load(ordering: .relaxed) == total)
        #expect(corrupt.load(ordering: .relaxed) == 0)
        #expect(duplicates.load(ordering: .relaxed) == 0)
        let s = pool.statistics()
        #expect(s.acquires == total)
        #expect(s.releases == total)
        #expect(s.bytesInUse == 0)
        // The threads have exited: their caches went to the shared lists (bounded) or back to jemalloc.
        #expect(s.bytesCached <= pool.configuration.sharedFreeListBytes)
        #expect(s.cacheHits > total / 2, "hit rate \(s.hitRate)")
    }

    @Test("all threads' caches together stay within the total bound")
    func totalBound() {
        let config = BufferPool.Configuration(
            perThreadCacheBytes: 2 << 20, totalThreadCacheBytes: 3 << 20, sharedFreeListBytes: 1 << 20,
            maxBuffersPerClass: 128, bytesPerClass: 1 << 20)
        let pool = BufferPool(configuration: config)
        let ready = Atomic<Int>(0)
        let release = Atomic<Bool>(false)
        let observed = Atomic<Int>(0)
        onThreads(4) { t in
            for size in [4096, 8192, 16384] {
                let held = (0..<100).map { _ in pool.acquire(count: size) }
                for b in held { pool.release(b) }
            }
            // Everyone has filled its cache: measure while all four threads are alive.
            if ready.add(1, ordering: .acquiringAndReleasing).newValue == 4 {
                observed.store(pool.statistics().bytesCached, ordering: .relaxed)
                release.store(true, ordering: .releasing)
            }
            while !release.load(ordering: .acquiring) { sched_yield() }
        }
        let cached = observed.load(ordering: .relaxed)
        #expect(cached > 0)
        #expect(cached <= config.totalThreadCacheBytes + config.sharedFreeListBytes, "cached \(cached)")
        #expect(pool.statistics().bytesInUse == 0)
    }

    @Test("a thread's exit returns its cache, statistics keep its counts")
    func threadExit() {
        let pool = BufferPool()
        onThreads(2) { _ in
            let held = (0..<500).map { _ in pool.acquire(count: 300) }
            for b in held { pool.release(b) }
        }
        let s = pool.statistics()
        #expect(s.acquires == 1000 && s.releases == 1000 && s.bytesInUse == 0)
        #expect(s.bytesCached <= pool.configuration.sharedFreeListBytes)
        // What the exited threads left in the shared list serves this thread.
        let again = (0..<100).map { _ in pool.acquire(count: 300) }
        for b in again { pool.release(b) }
        #expect(pool.statistics().acquires == 1100)
    }
}

#if DEBUG
@Suite("Buffer pool, debug checks")
struct BufferPoolDebugTests {
    @Test("a double release traps in a debug build")
    func doubleRelease() async {
        await #expect(processExitsWith: .failure) {
            let pool = BufferPool()
            let b = pool.acquire(count: 32)
            pool.release(b)
            pool.release(b)
        }
    }

    @Test("use after release traps in a debug build")
    func useAfterRelease() async {
        await #expect(processExitsWith: .failure) {
            let pool = BufferPool()
            let b = pool.acquire(count: 32)
            pool.release(b)
            _ = pool.acquire(count: 32)  // the same storage, handed out again
            _ = b.load(as: UInt32.self)
        }
    }
}
#endif
