import Foundation
import ReplicationCore

/// The operation kinds of a workload, in SPEC order.
public enum OpKind: Int, Sendable, CaseIterable, Codable {
    case read, update, insert, rmw, delete

    public var name: String {
        switch self {
        case .read: return "read"
        case .update: return "update"
        case .insert: return "insert"
        case .rmw: return "rmw"
        case .delete: return "delete"
        }
    }
}

/// The YCSB core workloads and their mixes.
public enum WorkloadName: String, Sendable, CaseIterable {
    case a, b, c, d, f, visibility

    /// (read, update, insert, rmw, delete) proportions: A 50/50, B 95/5, C 100, D 95 read + 5 insert (latest),
    /// F 50 read + 50 read-modify-write.
    public var mix: [Double] {
        switch self {
        case .a: return [0.5, 0.5, 0, 0, 0]
        case .b: return [0.95, 0.05, 0, 0, 0]
        case .c: return [1, 0, 0, 0, 0]
        case .d: return [0.95, 0, 0.05, 0, 0]
        case .f: return [0.5, 0, 0, 0.5, 0]
        case .visibility: return [0, 0, 0, 0, 0]
        }
    }

    /// The key distribution YCSB pairs with the workload (D reads the latest inserts).
    public var defaultDistribution: KeyDistribution { self == .d ? .latest : .zipfian }
}

/// How keys are chosen.
public enum KeyDistribution: String, Sendable, CaseIterable {
    case uniform, zipfian, latest, hotspot
}

/// Picks the next operation kind by the mix's proportions.
public struct OperationMix: Sendable {
    public let proportions: [Double]
    let cumulative: [Double]

    public init(proportions: [Double]) {
        self.proportions = proportions
        let total = proportions.reduce(0, +)
        var c: [Double] = []
        var sum = 0.0
        for p in proportions {
            sum += p / max(total, 1e-300)
            c.append(sum)
        }
        cumulative = c
    }

    @inline(__always)
    public func next(_ rng: inout Xoshiro) -> OpKind {
        let u = rng.nextDouble()
        for (i, c) in cumulative.enumerated() where u < c { return OpKind(rawValue: i)! }
        return OpKind(rawValue: cumulative.lastIndex { $0 > 0 } ?? 0)!
    }
}

/// YCSB's Zipfian generator (Gray et al., "Quickly generating billion-record synthetic databases"): item i of n
/// drawn with probability proportional to 1/(i+1)^θ.
public struct Zipfian: Sendable {
    public let items: UInt64
    public let theta: Double
    let zetan: Double
    let alpha: Double
    let eta: Double
    let zeta2: Double

    /// The zeta constant YCSB precomputes for its scrambled generator: ζ(10^10, 0.99).
    public static let zetaTenBillion = 26.46902820178302

    public init(items: UInt64, theta: Double = 0.99, zetan: Double? = nil) {
        self.items = items
        self.theta = theta
        self.zetan = zetan ?? Zipfian.zeta(items, theta)
        zeta2 = Zipfian.zeta(2, theta)
        alpha = 1 / (1 - theta)
        eta = (1 - pow(2 / Double(items), 1 - theta)) / (1 - zeta2 / self.zetan)
    }

    /// ζ(n, θ) = Σ_{i=1}^{n} 1/i^θ.
    public static func zeta(_ n: UInt64, _ theta: Double) -> Double {
        var sum = 0.0
        var i: UInt64 = 1
        while i <= n {
            sum += 1 / pow(Double(i), theta)
            i += 1
        }
        return sum
    }

    /// Probability of item `i` (0-based) under this generator's exact law.
    public func probability(of i: UInt64) -> Double { 1 / pow(Double(i + 1), theta) / zetan }

    @inline(__always)
    public func next(_ rng: inout Xoshiro) -> UInt64 {
        let u = rng.nextDouble()
        let uz = u * zetan
        if uz < 1 { return 0 }
        if uz < 1 + pow(0.5, theta) { return 1 }
        return min(items - 1, UInt64(Double(items) * pow(eta * u - eta + 1, alpha)))
    }

    /// A draw over the first `n` items (YCSB's `nextValue(itemcount)` for a growing key space: same constants).
    @inline(__always)
    public func next(_ rng: inout Xoshiro, below n: UInt64) -> UInt64 {
        let u = rng.nextDouble()
        let uz = u * zetan
        if uz < 1 { return 0 }
        if uz < 1 + pow(0.5, theta) { return min(1, n - 1) }
        return min(n - 1, UInt64(Double(n) * pow(eta * u - eta + 1, alpha)))
    }
}

/// 64-bit FNV-1a of a value's eight bytes, as YCSB's `fnvhash64` scrambles zipfian ranks.
@inline(__always)
public func fnv1a64(_ value: UInt64) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    var v = value
    for _ in 0..<8 {
        hash ^= v & 0xFF
        hash = hash &* 0x0000_0100_0000_01B3
        v >>= 8
    }
    return hash
}

/// Chooses keys among the records inserted so far.
public struct KeyChooser: Sendable {
    public let distribution: KeyDistribution
    let zipf: Zipfian

    public init(distribution: KeyDistribution, keys: Int) {
        self.distribution = distribution
        switch distribution {
        case .zipfian:
            // YCSB's ScrambledZipfianGenerator: a zipfian rank over 10^10 items, hashed onto the key space.
            zipf = Zipfian(items: 10_000_000_000, theta: 0.99, zetan: Zipfian.zetaTenBillion)
        case .latest:
            zipf = Zipfian(items: UInt64(max(keys, 2)), theta: 0.99)
        default:
            zipf = Zipfian(items: 2, theta: 0.99)
        }
    }

    /// A key among `0..<recordCount`.
    @inline(__always)
    public func next(_ rng: inout Xoshiro, recordCount: UInt64) -> UInt64 {
        let n = max(recordCount, 1)
        switch distribution {
        case .uniform:
            return rng.next() % n
        case .zipfian:
            return fnv1a64(zipf.next(&rng)) % n
        case .latest:
            // YCSB's SkewedLatestGenerator: the most recent inserts are the most popular.
            return n - 1 - zipf.next(&rng, below: n)
        case .hotspot:
            // 20% of the keys take 80% of the operations.
            let hot = max(1, n / 5)
            if rng.nextDouble() < 0.8 { return rng.next() % hot }
            return n == hot ? rng.next() % n : hot + rng.next() % (n - hot)
        }
    }
}
