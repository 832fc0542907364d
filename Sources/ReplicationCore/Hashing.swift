/// The 64-bit mixing function used for keys, ring tokens and seeds.
public enum Hash64 {
    /// A well-mixed 64-bit hash of `x` (the SplitMix64 / Murmur3 finalizer: every input bit affects every output
    /// bit with probability close to 1/2).
    @inlinable @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Combines two values into one hash.
    @inlinable
    public static func combine(_ a: UInt64, _ b: UInt64) -> UInt64 { mix(a ^ mix(b)) }
}

/// A key of the store: a fixed-width integer, hashed once on creation.
public struct Key: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The key as the client named it.
    public let id: UInt64
    /// Its position on the ring.
    public let hash: UInt64

    @inlinable
    public init(_ id: UInt64) {
        self.id = id
        self.hash = Hash64.mix(id)
    }

    @inlinable
    public static func == (a: Key, b: Key) -> Bool { a.id == b.id }
    @inlinable
    public func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    @inlinable
    public static func < (a: Key, b: Key) -> Bool { a.id < b.id }
    public var description: String { "key \(id)" }
}

/// A fast, seedable generator (xoshiro256**). Every random choice in quorumbench derives from one seed through
/// ``derive(_:)``, so a run is reproducible.
public struct Xoshiro: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            return Hash64.mix(x)
        }
        s0 = next(); s1 = next(); s2 = next(); s3 = next()
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    /// An independent generator for a named subsystem, derived from `seed`.
    public static func derive(_ seed: UInt64, _ stream: UInt64) -> Xoshiro {
        Xoshiro(seed: Hash64.combine(seed, stream &+ 0x5851_F42D_4C95_7F2D))
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// A uniform double in [0, 1).
    @inlinable
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A uniform integer in 0..<bound.
    @inlinable
    public mutating func next(below bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}

/// A 64-bit integer key for dictionaries on the hot path: hashed with one multiply-xorshift mix instead of
/// SipHash (through `_rawHashValue(seed:)`, which `Dictionary` and `Set` call directly). The seed keeps the
/// per-process randomization of the standard library.
public struct FastKey: Hashable, Sendable {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    @inlinable public static func == (a: FastKey, b: FastKey) -> Bool { a.raw == b.raw }
    @inlinable public func hash(into hasher: inout Hasher) { hasher.combine(raw) }
    @inlinable public func _rawHashValue(seed: Int) -> Int {
        Int(truncatingIfNeeded: Hash64.mix(raw ^ UInt64(truncatingIfNeeded: seed)))
    }
}
