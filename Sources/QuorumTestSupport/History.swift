import BufferPool
import ReplicationCore
import SyncPrimitives

/// Every value written in a test (and by the load generator) carries the id of the write that made it in its first
/// eight bytes, little-endian.
public enum WriteTag {
    /// A buffer of `size` bytes (at least 8) starting with `id`.
    public static func value(id: UInt64, size: Int = 16, pool: BufferPool = .shared) -> PoolBuffer {
        let b = pool.acquireShareable(count: max(8, size))
        b.withUnsafeMutableBytes { raw in
            for i in 8..<raw.count { raw[i] = UInt8(truncatingIfNeeded: id &+ UInt64(i)) }
        }
        b.store(id)
        return b
    }

    /// The write id a version carries (nil if it carries no value).
    public static func id(of version: Version) -> UInt64? {
        guard let v = version.value, v.count >= 8 else { return nil }
        return v.load(as: UInt64.self)
    }
}

/// A history of writes and reads, and the SPEC's freshness check over it: every read that starts after a write was
/// acknowledged returns that write or a write that supersedes it.
///
/// "Supersedes" is known from what the clients did, not from what the store says: write B supersedes write A when
/// A was among the writes the read that gave B its context returned, or superseded by one of them.
public final class History: @unchecked Sendable {
    public struct Write: Sendable {
        public var id: UInt64
        public var key: UInt64
        /// Writes returned by the read whose context this write carried.
        public var saw: [UInt64]
        /// When the client got the acknowledgement (nil: failed or never acknowledged).
        public var acknowledged: UInt64?
    }

    public struct Read: Sendable {
        public var key: UInt64
        public var start: UInt64
        public var returned: [UInt64]
    }

    /// A read that missed acknowledged writes.
    public struct Violation: Sendable, CustomStringConvertible {
        public var read: Read
        public var missed: [UInt64]
        public var description: String {
            "read of key \(read.key) at \(read.start) returned \(read.returned) but missed acknowledged \(missed)"
        }
    }

    struct State {
        var writes: [UInt64: Write] = [:]
        var reads: [Read] = []
    }

    private let state = Locked(State())

    public init() {}

    /// Records a write before it is sent.
    public func wrote(id: UInt64, key: UInt64, saw: [UInt64]) {
        state.withLock { $0.writes[id] = Write(id: id, key: key, saw: saw, acknowledged: nil) }
    }

    /// Records the acknowledgement of write `id` at `time`.
    public func acknowledged(id: UInt64, at time: UInt64) {
        state.withLock { $0.writes[id]?.acknowledged = time }
    }

    /// Records an ok read that started at `start` and returned these writes.
    public func read(key: UInt64, start: UInt64, returned: [UInt64]) {
        state.withLock { $0.reads.append(Read(key: key, start: start, returned: returned)) }
    }

    public var writeCount: Int { state.withLock { $0.writes.count } }
    public var readCount: Int { state.withLock { $0.reads.count } }

    /// Every read that missed a write acknowledged before it started (neither returned nor superseded).
    public func violations() -> [Violation] {
        let (writes, reads) = state.withLock { ($0.writes, $0.reads) }
        var closure: [UInt64: Set<UInt64>] = [:]
        func superseded(by id: UInt64) -> Set<UInt64> {
            if let c = closure[id] { return c }
            closure[id] = []  // cycles cannot happen; guard anyway
            var result = Set<UInt64>()
            for s in writes[id]?.saw ?? [] {
                result.insert(s)
                result.formUnion(superseded(by: s))
            }
            closure[id] = result
            return result
        }
        var byKey: [UInt64: [Write]] = [:]
        for w in writes.values where w.acknowledged != nil { byKey[w.key, default: []].append(w) }
        var found: [Violation] = []
        for r in reads {
            var covered = Set(r.returned)
            for id in r.returned { covered.formUnion(superseded(by: id)) }
            let missed = (byKey[r.key] ?? []).filter { $0.acknowledged! < r.start && !covered.contains($0.id) }
            if !missed.isEmpty { found.append(Violation(read: r, missed: missed.map(\.id).sorted())) }
        }
        return found
    }
}
