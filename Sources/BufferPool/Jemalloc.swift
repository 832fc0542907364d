#if QB_SYSTEM_ALLOCATOR
// Built with QUORUMBENCH_SYSTEM_ALLOCATOR=1 (scripts/tsan.sh): ThreadSanitizer's malloc interceptors and a
// jemalloc that replaces malloc cannot share a process, so the pool's blocks come from the system allocator and
// the jemalloc figures read 0. Every line of the pool's own synchronization is the same.
#if canImport(Glibc)
import Glibc
#endif
#else
import CJemalloc
#endif

/// jemalloc's process-wide statistics, read through `mallctl` after advancing `epoch`.
public struct JemallocStatistics: Sendable, Equatable, Codable {
    /// Bytes allocated by the application (`stats.allocated`).
    public var allocated: Int
    /// Bytes in active pages (`stats.active`).
    public var active: Int
    /// Bytes in physically resident data pages mapped by the allocator (`stats.resident`).
    public var resident: Int
    /// Bytes in chunks mapped by the allocator (`stats.mapped`).
    public var mapped: Int

    public init(allocated: Int = 0, active: Int = 0, resident: Int = 0, mapped: Int = 0) {
        self.allocated = allocated
        self.active = active
        self.resident = resident
        self.mapped = mapped
    }

    /// Reads the current figures. `epoch` is advanced first, as jemalloc caches its statistics until then.
    public static func current() -> JemallocStatistics {
        _Jemalloc.advanceEpoch()
        return JemallocStatistics(
            allocated: _Jemalloc.readSize("stats.allocated"),
            active: _Jemalloc.readSize("stats.active"),
            resident: _Jemalloc.readSize("stats.resident"),
            mapped: _Jemalloc.readSize("stats.mapped")
        )
    }

    /// The jemalloc version string this process runs with.
    public static var version: String {
        #if QB_SYSTEM_ALLOCATOR
        return "none (system allocator build)"
        #else
        var ptr: UnsafePointer<CChar>? = nil
        var len = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &ptr, &len, nil, 0) == 0, let ptr else { return "unknown" }
        return String(cString: ptr)
        #endif
    }
}

/// The few `mallctl` calls the pool needs. The only place jemalloc's control interface is called.
@usableFromInline
enum _Jemalloc {
    /// A block of `size` bytes from the arena behind `flags` (see `qb_pool_flags`).
    static func allocate(_ size: Int, flags: Int32) -> UnsafeMutableRawPointer {
        #if QB_SYSTEM_ALLOCATOR
        guard let block = malloc(size) else { fatalError("out of memory (\(size) bytes)") }
        #else
        guard let block = mallocx(size, flags) else { fatalError("jemalloc out of memory (\(size) bytes)") }
        #endif
        return block
    }

    /// Frees a block from ``allocate(_:flags:)``, telling jemalloc its size.
    static func deallocate(_ block: UnsafeMutableRawPointer, size: Int, flags: Int32) {
        #if QB_SYSTEM_ALLOCATOR
        free(block)
        #else
        sdallocx(block, size, flags)
        #endif
    }

    /// The `mallocx` flags for the pool's arena: that arena, and no jemalloc thread cache.
    static func flags(arena: UInt32) -> Int32 {
        #if QB_SYSTEM_ALLOCATOR
        return 0
        #else
        return qb_pool_flags(arena)
        #endif
    }

    #if QB_SYSTEM_ALLOCATOR
    static func mallctl(
        _ name: String, _ old: UnsafeMutableRawPointer?, _ oldLen: UnsafeMutablePointer<Int>?,
        _ new: UnsafeMutableRawPointer?, _ newLen: Int
    ) -> Int32 { -1 }
    #endif

    static func advanceEpoch() {
        var epoch: UInt64 = 1
        _ = mallctl("epoch", nil, nil, &epoch, MemoryLayout<UInt64>.size)
    }

    static func readSize(_ name: String) -> Int {
        var value: Int = 0
        var len = MemoryLayout<Int>.size
        guard mallctl(name, &value, &len, nil, 0) == 0 else { return 0 }
        return value
    }

    /// Creates a new arena (`arenas.create`) and returns its index.
    static func createArena() -> UInt32 {
        var index: UInt32 = 0
        var len = MemoryLayout<UInt32>.size
        let rc = mallctl("arenas.create", &index, &len, nil, 0)
        #if !QB_SYSTEM_ALLOCATOR
        precondition(rc == 0, "jemalloc arenas.create failed with \(rc)")
        #endif
        return index
    }

    /// Sets the arena's dirty and muzzy page decay times: how soon freed pages go back to the system.
    static func setDecay(arena: UInt32, milliseconds: Int) {
        var ms = milliseconds
        _ = mallctl("arena.\(arena).dirty_decay_ms", nil, nil, &ms, MemoryLayout<Int>.size)
        _ = mallctl("arena.\(arena).muzzy_decay_ms", nil, nil, &ms, MemoryLayout<Int>.size)
    }

    /// Purges the arena's unused dirty pages now.
    static func purge(arena: UInt32) {
        _ = mallctl("arena.\(arena).purge", nil, nil, nil, 0)
    }

    /// Destroys the arena and every region in it.
    static func destroy(arena: UInt32) {
        _ = mallctl("arena.\(arena).destroy", nil, nil, nil, 0)
    }

    /// Resident bytes of one arena (`stats.arenas.<i>.resident`), after advancing `epoch`.
    static func arenaResident(_ arena: UInt32) -> Int {
        advanceEpoch()
        return readSize("stats.arenas.\(arena).resident")
    }
}
