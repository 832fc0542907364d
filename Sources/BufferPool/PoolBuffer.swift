import CQuorumSupport

/// A buffer owned by a ``BufferPool``: the memory a stored value lives in.
///
/// A `PoolBuffer` is a handle: it never exposes a raw pointer that outlives a closure. Each handle is released
/// exactly once, with ``BufferPool/release(_:)``. In a debug build every buffer carries a generation stamp, and a
/// second release, or an access through a handle whose buffer was released, traps with a message; a release build
/// skips the checks.
///
/// A *shareable* buffer (``BufferPool/acquireShareable(count:)``) carries a reference count: ``BufferPool/share(_:)``
/// hands out another handle to the same bytes instead of a copy, and the storage goes back to the pool with the
/// last handle's release. Its bytes must not change once it has been shared (values are immutable once written).
public struct PoolBuffer: @unchecked Sendable {
    // 16 bytes in a release build: a handle crosses threads in every message, and its size is cache traffic.
    @usableFromInline let _payload: UnsafeMutableRawPointer
    @usableFromInline let _count: UInt32
    @usableFromInline let _classIndex: Int16  // -1: larger than the largest class, owned by jemalloc directly
    @usableFromInline let _poolID: Int16  // the pool's id, with _sharedFlag set for a shareable buffer
    /// The number of bytes the buffer was acquired for.
    @inlinable public var count: Int { Int(_count) }
    #if DEBUG
    @usableFromInline let _generation: Int64
    #endif

    #if DEBUG
    @inlinable
    init(_payload: UnsafeMutableRawPointer, classIndex: Int16, poolID: Int16, count: Int, generation: Int64) {
        self._payload = _payload
        self._classIndex = classIndex
        self._poolID = poolID
        self._count = UInt32(truncatingIfNeeded: count)
        self._generation = generation
    }
    #else
    @inlinable
    init(_payload: UnsafeMutableRawPointer, classIndex: Int16, poolID: Int16, count: Int) {
        self._payload = _payload
        self._classIndex = classIndex
        self._poolID = poolID
        self._count = UInt32(truncatingIfNeeded: count)
    }
    #endif

    /// The bit of `_poolID` that marks a shareable buffer.
    @inlinable static var _sharedFlag: Int { 1 << 14 }
    /// Whether the buffer is reference-counted (``BufferPool/acquireShareable(count:)``).
    @inlinable public var isShareable: Bool { Int(_poolID) & Self._sharedFlag != 0 }
    @inlinable var _pool: Int { Int(_poolID) & (Self._sharedFlag - 1) }
    /// Bytes in front of the payload: the debug header, or for a shareable buffer the reference-count header.
    @inlinable var _headerSize: Int { isShareable ? _PoolDebug.sharedHeaderSize : _PoolDebug.headerSize }

    /// The bytes the buffer can hold: its size class less its header.
    @inlinable
    public var capacity: Int {
        _classIndex >= 0 ? SizeClass.size(ofIndex: Int(_classIndex)) - _headerSize : count
    }

    /// An opaque identity of the underlying storage: equal for two handles to the same storage. Lets tests see
    /// reuse; it is not a pointer and cannot be turned into one.
    @inlinable
    public var storageID: UInt { UInt(bitPattern: _payload) }

    /// Calls `body` with the buffer's first ``count`` bytes.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        _checkLive()
        return try body(UnsafeRawBufferPointer(start: _payload, count: count))
    }

    /// Calls `body` with the buffer's first ``count`` bytes, writable. The buffer has reference semantics: every
    /// copy of the handle sees the write.
    @inlinable
    public func withUnsafeMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        _checkLive()
        return try body(UnsafeMutableRawBufferPointer(start: _payload, count: count))
    }

    /// Reads a fixed-width integer stored little-endian at `offset`.
    @inlinable
    public func load<T: FixedWidthInteger>(fromByteOffset offset: Int = 0, as type: T.Type) -> T {
        _checkLive()
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "read past the end of a PoolBuffer")
        return T(littleEndian: _payload.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Stores a fixed-width integer little-endian at `offset`.
    @inlinable
    public func store<T: FixedWidthInteger>(_ value: T, toByteOffset offset: Int = 0) {
        _checkLive()
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "write past the end of a PoolBuffer")
        _payload.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }

    /// True when both buffers hold the same bytes.
    @inlinable
    public func contentEquals(_ other: PoolBuffer) -> Bool {
        guard count == other.count else { return false }
        _checkLive()
        other._checkLive()
        return memcmp(_payload, other._payload, count) == 0
    }

    /// The bytes as an array (for tests and reports; not for the hot path).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    @inlinable @inline(__always)
    func _checkLive() {
        #if DEBUG
        let current = qb_load_relaxed(_PoolDebug.header(of: _payload))
        if current != _generation {
            fatalError("PoolBuffer used after release (storage \(storageID), generation \(_generation), now \(current))")
        }
        #endif
    }
}

/// The debug-build header in front of every pooled payload: a generation stamp, odd while the buffer is handed out.
@usableFromInline
enum _PoolDebug {
    #if DEBUG
    @inlinable static var headerSize: Int { 16 }
    #else
    @inlinable static var headerSize: Int { 0 }
    #endif
    /// A shareable buffer's header in either build: the debug generation stamp (unused in a release build), then
    /// the reference count, just before the payload.
    @inlinable static var sharedHeaderSize: Int { 16 }

    @inlinable @inline(__always)
    static func referenceCount(of payload: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Int64> {
        (payload - 8).assumingMemoryBound(to: Int64.self)
    }

    @inlinable @inline(__always)
    static func header(of payload: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Int64> {
        (payload - 16).assumingMemoryBound(to: Int64.self)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
