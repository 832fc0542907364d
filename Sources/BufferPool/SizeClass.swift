/// The pool's size classes.
///
/// The classes are jemalloc's own small and large classes from 16 B to 1 MiB: 16 B steps up to 128 B, then four
/// classes per doubling (`2^k · {1.25, 1.5, 1.75, 2}`). Why this spacing:
/// - every class is a size jemalloc allocates exactly, so `mallocx(classSize)` adds no rounding of its own and
///   `sdallocx` can be told the exact size: the only internal fragmentation is ours;
/// - four classes per doubling bound that waste at 20% of the class (25% below 128 B), where powers of two would
///   waste up to 50%; finer spacing would multiply the classes and thin out every per-thread cache;
/// - the class of a size is a few shifts on its bit length, no table search.
/// Requests above ``maxClassSize`` bypass the classes and go straight to jemalloc.
public enum SizeClass {
    /// Number of size classes (16 B … 1 MiB).
    public static let count = 60
    /// The smallest class.
    public static let minClassSize = 16
    /// The largest class; larger buffers are allocated and freed directly by jemalloc.
    public static let maxClassSize = 1 << 20

    @inlinable @inline(__always)
    static func _size(ofIndex index: Int) -> Int {
        if index < 8 { return (index + 1) << 4 }
        let j = index - 8
        let lg = 7 + j >> 2
        let k = (j & 3) + 1
        return (1 << lg) + k << (lg - 2)
    }

    /// The index of the smallest class that holds `size` bytes, or `nil` when `size` exceeds ``maxClassSize``.
    @inlinable @inline(__always)
    public static func index(for size: Int) -> Int? {
        if size <= 128 {
            return size <= 16 ? 0 : (size + 15) >> 4 - 1
        }
        if size > maxClassSize { return nil }
        let x = UInt64(size - 1)
        let lg = 63 - x.leadingZeroBitCount
        let k = Int(truncatingIfNeeded: (x >> UInt64(lg - 2)) & 3)
        return 8 + (lg - 7) << 2 + k
    }

    /// The byte size of class `index`.
    @inlinable @inline(__always)
    public static func size(ofIndex index: Int) -> Int { _size(ofIndex: index) }

    /// The size a request of `size` bytes is rounded up to (itself above ``maxClassSize``).
    @inlinable
    public static func roundedSize(for size: Int) -> Int {
        guard let i = index(for: size) else { return size }
        return _size(ofIndex: i)
    }
}
