import Foundation
import ReplicationCore

/// A distribution of non-negative values: delays (in ns) or sizes (in bytes), from the SPEC's grammar:
/// `const(1ms)`, `uniform(1ms,5ms)`, `exp(mean=2ms)`, `pareto(xm=0.5ms,alpha=3)`,
/// `lognormal(median=1ms,sigma=0.5)`, `normal(mean=2ms,sd=0.5ms)` (cut at 0), `mix(0.9*DIST,0.1*DIST)`.
/// A bare value (`5ms`, `256`) is a constant.
///
/// Not `indirect`: the mixture recurses through an array already, and a boxed enum cost a retain and a release
/// each time a delay was read out of an array to draw from — once per message.
public enum Distribution: Sendable, Equatable, CustomStringConvertible {
    case constant(Double)
    case uniform(Double, Double)
    case exponential(mean: Double)
    case pareto(xm: Double, alpha: Double)
    case lognormal(median: Double, sigma: Double)
    case normal(mean: Double, sd: Double)
    case mixture([Component])
    /// Resampled from recorded values (an HdrHistogram log): values and their cumulative counts.
    case empirical(Empirical)

    public struct Component: Sendable, Equatable {
        public var weight: Double
        public var distribution: Distribution
    }

    /// Values with cumulative counts, sampled by inverse CDF.
    public struct Empirical: Sendable, Equatable {
        public var values: [Double]
        public var cumulative: [UInt64]
        public var source: String
        public init(values: [Double], cumulative: [UInt64], source: String) {
            self.values = values
            self.cumulative = cumulative
            self.source = source
        }
    }

    /// What the numbers mean.
    public enum Unit: Sendable {
        /// Durations with units `ns us ms s m`; values in ns.
        case duration
        /// Plain counts (bytes); values as written.
        case count
    }

    /// A draw. The common shapes inline (a delay is drawn for every message), the rest in ``sampleOther(_:)``.
    @inlinable @inline(__always)
    public func sample(_ rng: inout Xoshiro) -> Double {
        switch self {
        case .constant(let v): return v
        case .uniform(let a, let b): return a + (b - a) * rng.nextDouble()
        case .exponential(let mean): return -mean * log(1 - rng.nextDouble())
        default: return sampleOther(&rng)
        }
    }

    @usableFromInline
    func sampleOther(_ rng: inout Xoshiro) -> Double {
        switch self {
        case .constant, .uniform, .exponential: return sample(&rng)
        case .pareto(let xm, let alpha): return xm / pow(1 - rng.nextDouble(), 1 / alpha)
        case .lognormal(let median, let sigma): return median * exp(sigma * Distribution.gaussian(&rng))
        case .normal(let mean, let sd): return max(0, mean + sd * Distribution.gaussian(&rng))
        case .mixture(let parts):
            var u = rng.nextDouble()
            for p in parts {
                if u < p.weight { return p.distribution.sample(&rng) }
                u -= p.weight
            }
            return parts[parts.count - 1].distribution.sample(&rng)
        case .empirical(let e):
            guard let total = e.cumulative.last, total > 0 else { return 0 }
            let target = UInt64(rng.nextDouble() * Double(total))
            var lo = 0
            var hi = e.cumulative.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if e.cumulative[mid] > target { hi = mid } else { lo = mid + 1 }
            }
            return e.values[lo]
        }
    }

    /// A standard normal draw (Box–Muller).
    @inlinable
    static func gaussian(_ rng: inout Xoshiro) -> Double {
        let u1 = max(rng.nextDouble(), 1e-300)
        let u2 = rng.nextDouble()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    /// The mean, where it has a closed form (normal is cut at 0 and reported uncut).
    public var mean: Double {
        switch self {
        case .constant(let v): return v
        case .uniform(let a, let b): return (a + b) / 2
        case .exponential(let m): return m
        case .pareto(let xm, let alpha): return alpha > 1 ? alpha * xm / (alpha - 1) : .infinity
        case .lognormal(let median, let sigma): return median * exp(sigma * sigma / 2)
        case .normal(let mean, _): return mean
        case .mixture(let parts): return parts.reduce(0) { $0 + $1.weight * $1.distribution.mean }
        case .empirical(let e):
            guard let total = e.cumulative.last, total > 0 else { return 0 }
            var sum = 0.0
            var previous: UInt64 = 0
            for (v, c) in zip(e.values, e.cumulative) {
                sum += v * Double(c - previous)
                previous = c
            }
            return sum / Double(total)
        }
    }

    public var description: String { render(.duration) }

    /// The distribution written back in the grammar.
    public func render(_ unit: Unit) -> String {
        func v(_ x: Double) -> String { unit == .duration ? Distribution.formatDuration(x) : Distribution.formatNumber(x) }
        switch self {
        case .constant(let x): return "const(\(v(x)))"
        case .uniform(let a, let b): return "uniform(\(v(a)),\(v(b)))"
        case .exponential(let m): return "exp(mean=\(v(m)))"
        case .pareto(let xm, let alpha): return "pareto(xm=\(v(xm)),alpha=\(Distribution.formatNumber(alpha)))"
        case .lognormal(let m, let s): return "lognormal(median=\(v(m)),sigma=\(Distribution.formatNumber(s)))"
        case .normal(let m, let sd): return "normal(mean=\(v(m)),sd=\(v(sd)))"
        case .mixture(let parts):
            return "mix(" + parts.map { "\(Distribution.formatNumber($0.weight))*\($0.distribution.render(unit))" }
                .joined(separator: ",") + ")"
        case .empirical(let e): return "hlog(\(e.source))"
        }
    }

    static func formatNumber(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
    }

    /// Formats ns with the largest unit that keeps it readable.
    public static func formatDuration(_ ns: Double) -> String {
        if ns == 0 { return "0ms" }
        for (unit, scale) in [("s", 1e9), ("ms", 1e6), ("us", 1e3)] where ns >= scale {
            return formatNumber((ns / scale * 1000).rounded() / 1000) + unit
        }
        return formatNumber(ns) + "ns"
    }
}

/// A problem in a distribution or duration, naming the part that is wrong.
public struct DistributionError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Distribution {
    /// Parses the SPEC grammar. `hlogLoader` resolves `hlog(FILE[,TAG])` (the load generator provides it).
    public static func parse(
        _ text: String, unit: Unit = .duration,
        hlogLoader: ((String, String?) throws -> Distribution)? = nil
    ) throws -> Distribution {
        var parser = Parser(text: text, unit: unit, hlogLoader: hlogLoader)
        let d = try parser.parseDistribution()
        parser.skipSpaces()
        if !parser.atEnd {
            throw DistributionError("unexpected '\(parser.rest)' after \(d.render(unit)) in '\(text)'")
        }
        return d
    }

    /// Parses a duration such as `100ms`, `1.5s`, `250us` into ns.
    public static func parseDuration(_ text: String) throws -> Double {
        try Parser.value(text.trimmingCharacters(in: .whitespaces), unit: .duration, context: text)
    }

    struct Parser {
        let text: String
        let unit: Unit
        let hlogLoader: ((String, String?) throws -> Distribution)?
        var chars: [Character]
        var pos = 0

        init(text: String, unit: Unit, hlogLoader: ((String, String?) throws -> Distribution)?) {
            self.text = text
            self.unit = unit
            self.hlogLoader = hlogLoader
            chars = Array(text)
        }

        var atEnd: Bool { pos >= chars.count }
        var rest: String { String(chars[pos...]) }

        mutating func skipSpaces() { while pos < chars.count && chars[pos] == " " { pos += 1 } }

        mutating func parseDistribution() throws -> Distribution {
            skipSpaces()
            let start = pos
            while pos < chars.count && (chars[pos].isLetter) { pos += 1 }
            let name = String(chars[start..<pos]).lowercased()
            skipSpaces()
            if name.isEmpty || pos >= chars.count || chars[pos] != "(" {
                // A bare value: a constant.
                pos = start
                let token = readToken()
                if token.isEmpty { throw DistributionError("expected a distribution in '\(text)'") }
                return .constant(try Parser.value(token, unit: unit, context: text))
            }
            pos += 1  // (
            let args = try readArguments(of: name)
            switch name {
            case "const", "constant":
                let a = try args.positional(1, "const(VALUE)")
                return .constant(try Parser.value(a[0], unit: unit, context: text))
            case "uniform":
                let a = try args.positional(2, "uniform(LOW,HIGH)")
                let lo = try Parser.value(a[0], unit: unit, context: text)
                let hi = try Parser.value(a[1], unit: unit, context: text)
                guard lo <= hi else { throw DistributionError("uniform(\(a[0]),\(a[1])): low is above high") }
                return .uniform(lo, hi)
            case "exp", "exponential":
                let m = try Parser.value(try args.named("mean", at: 0, "exp(mean=D)"), unit: unit, context: text)
                guard m > 0 else { throw DistributionError("exp(mean=…) needs a positive mean in '\(text)'") }
                return .exponential(mean: m)
            case "pareto":
                let xm = try Parser.value(try args.named("xm", at: 0, "pareto(xm=D,alpha=A)"), unit: unit, context: text)
                let alpha = try Parser.number(try args.named("alpha", at: 1, "pareto(xm=D,alpha=A)"), context: text)
                guard xm > 0, alpha > 0 else { throw DistributionError("pareto needs xm > 0 and alpha > 0 in '\(text)'") }
                return .pareto(xm: xm, alpha: alpha)
            case "lognormal":
                let median = try Parser.value(
                    try args.named("median", at: 0, "lognormal(median=D,sigma=S)"), unit: unit, context: text)
                let sigma = try Parser.number(try args.named("sigma", at: 1, "lognormal(median=D,sigma=S)"), context: text)
                guard median > 0, sigma >= 0 else {
                    throw DistributionError("lognormal needs median > 0 and sigma ≥ 0 in '\(text)'")
                }
                return .lognormal(median: median, sigma: sigma)
            case "normal":
                let mean = try Parser.value(try args.named("mean", at: 0, "normal(mean=D,sd=D)"), unit: unit, context: text)
                let sd = try Parser.value(try args.named("sd", at: 1, "normal(mean=D,sd=D)"), unit: unit, context: text)
                return .normal(mean: mean, sd: sd)
            case "mix":
                var parts: [Component] = []
                for arg in args.raw {
                    guard let star = arg.firstIndex(of: "*") else {
                        throw DistributionError("mix component '\(arg)' is not WEIGHT*DIST")
                    }
                    let weight = try Parser.number(String(arg[..<star]), context: text)
                    guard weight > 0 else { throw DistributionError("mix weight \(weight) must be positive") }
                    var sub = Parser(text: String(arg[arg.index(after: star)...]), unit: unit, hlogLoader: hlogLoader)
                    let d = try sub.parseDistribution()
                    sub.skipSpaces()
                    if !sub.atEnd { throw DistributionError("unexpected '\(sub.rest)' in mix component '\(arg)'") }
                    parts.append(Component(weight: weight, distribution: d))
                }
                guard parts.count >= 1 else { throw DistributionError("mix() needs components") }
                let total = parts.reduce(0) { $0 + $1.weight }
                guard abs(total - 1) < 1e-6 else {
                    throw DistributionError("mix weights sum to \(Distribution.formatNumber(total)), not 1, in '\(text)'")
                }
                return .mixture(parts)
            case "hlog":
                guard args.raw.count == 1 || args.raw.count == 2 else {
                    throw DistributionError("hlog takes FILE or FILE,TAG in '\(text)'")
                }
                guard let hlogLoader else { throw DistributionError("hlog(…) is not available here") }
                return try hlogLoader(args.raw[0], args.raw.count == 2 ? args.raw[1] : nil)
            default:
                throw DistributionError(
                    "unknown distribution '\(name)' in '\(text)' (const, uniform, exp, pareto, lognormal, normal, mix, hlog)")
            }
        }

        mutating func readToken() -> String {
            let start = pos
            while pos < chars.count && chars[pos] != "," && chars[pos] != ")" && chars[pos] != " " { pos += 1 }
            return String(chars[start..<pos])
        }

        struct Arguments {
            var raw: [String]
            var name: String
            func positional(_ count: Int, _ usage: String) throws -> [String] {
                guard raw.count == count, raw.allSatisfy({ !$0.contains("=") }) || count == 1 && raw.count == 1 else {
                    throw DistributionError("\(name)(\(raw.joined(separator: ","))): expected \(usage)")
                }
                return raw.map { $0.contains("=") ? String($0.split(separator: "=", maxSplits: 1)[1]) : $0 }
            }
            func named(_ key: String, at index: Int, _ usage: String) throws -> String {
                for a in raw {
                    let parts = a.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    if parts.count == 2 && parts[0] == key { return parts[1] }
                }
                if index < raw.count && !raw[index].contains("=") { return raw[index] }
                throw DistributionError("\(name)(\(raw.joined(separator: ","))): missing \(key)=, expected \(usage)")
            }
        }

        /// Reads comma-separated arguments up to the matching ')', respecting nested parentheses.
        mutating func readArguments(of name: String) throws -> Arguments {
            var args: [String] = []
            var depth = 0
            var current = ""
            while pos < chars.count {
                let c = chars[pos]
                pos += 1
                if c == "(" { depth += 1 }
                if c == ")" {
                    if depth == 0 {
                        let t = current.trimmingCharacters(in: .whitespaces)
                        if !t.isEmpty || !args.isEmpty { args.append(t) }
                        return Arguments(raw: args, name: name)
                    }
                    depth -= 1
                }
                if c == "," && depth == 0 {
                    args.append(current.trimmingCharacters(in: .whitespaces))
                    current = ""
                } else {
                    current.append(c)
                }
            }
            throw DistributionError("missing ')' in '\(text)'")
        }

        static func number(_ token: String, context: String) throws -> Double {
            guard let v = Double(token.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                throw DistributionError("'\(token)' is not a number in '\(context)'")
            }
            return v
        }

        static func value(_ token: String, unit: Unit, context: String) throws -> Double {
            let t = token.trimmingCharacters(in: .whitespaces)
            switch unit {
            case .count:
                var digits = t
                var scale = 1.0
                for (suffix, s) in [("KiB", 1024.0), ("MiB", 1048576.0), ("B", 1.0)] where t.hasSuffix(suffix) {
                    digits = String(t.dropLast(suffix.count))
                    scale = s
                    break
                }
                let v = try number(digits, context: context) * scale
                guard v >= 0 else { throw DistributionError("'\(token)' is negative in '\(context)'") }
                return v
            case .duration:
                var split = t.endIndex
                while split > t.startIndex, t[t.index(before: split)].isLetter { split = t.index(before: split) }
                let digits = String(t[..<split])
                let unitText = String(t[split...])
                let scale: Double
                switch unitText {
                case "ns": scale = 1
                case "us", "µs": scale = 1e3
                case "ms": scale = 1e6
                case "s": scale = 1e9
                case "m": scale = 60e9
                case "":
                    if let v = Double(digits), v == 0 { return 0 }
                    throw DistributionError("'\(token)' needs a unit (ns, us, ms, s, m) in '\(context)'")
                default:
                    throw DistributionError("'\(unitText)' in '\(token)' is not a unit (ns, us, ms, s, m)")
                }
                let v = try number(digits, context: context)
                guard v >= 0 else { throw DistributionError("'\(token)' is negative in '\(context)'") }
                return v * scale
            }
        }
    }
}
