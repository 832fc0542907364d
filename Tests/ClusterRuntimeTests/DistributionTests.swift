import Foundation
import Testing
@testable import ClusterRuntime
@testable import ReplicationCore

func samples(_ d: Distribution, _ count: Int = 200_000, seed: UInt64 = 1) -> [Double] {
    var rng = Xoshiro(seed: seed)
    return (0..<count).map { _ in d.sample(&rng) }.sorted()
}

func quantile(_ sorted: [Double], _ q: Double) -> Double { sorted[Int(Double(sorted.count - 1) * q)] }
func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }
func close(_ a: Double, _ b: Double, _ tolerance: Double) -> Bool { abs(a - b) <= tolerance * abs(b) }

@Suite("Distributions")
struct DistributionTests {
    @Test("const and bare values")
    func constant() throws {
        #expect(try Distribution.parse("const(2ms)") == .constant(2e6))
        #expect(try Distribution.parse("5ms") == .constant(5e6))
        #expect(try Distribution.parse("256", unit: .count) == .constant(256))
        #expect(samples(.constant(3), 10).allSatisfy { $0 == 3 })
    }

    @Test("uniform: mean and quartiles")
    func uniform() throws {
        let d = try Distribution.parse("uniform(1ms,5ms)")
        let s = samples(d)
        #expect(close(mean(s), 3e6, 0.01))
        #expect(close(quantile(s, 0.25), 2e6, 0.02) && close(quantile(s, 0.75), 4e6, 0.02))
        #expect(s.first! >= 1e6 && s.last! <= 5e6)
    }

    @Test("exp: mean, and median = mean·ln 2")
    func exponential() throws {
        let d = try Distribution.parse("exp(mean=2ms)")
        let s = samples(d)
        #expect(close(mean(s), 2e6, 0.02))
        #expect(close(quantile(s, 0.5), 2e6 * log(2), 0.02))
        #expect(try Distribution.parse("exp(2ms)") == d)
    }

    @Test("pareto: median = xm·2^(1/α), mean = α·xm/(α−1)")
    func pareto() throws {
        let d = try Distribution.parse("pareto(xm=0.5ms,alpha=3)")
        let s = samples(d)
        #expect(close(quantile(s, 0.5), 0.5e6 * pow(2, 1.0 / 3), 0.02))
        #expect(close(mean(s), 0.75e6, 0.03))
        #expect(s.first! >= 0.5e6)
    }

    @Test("lognormal: median, and the 84th percentile at median·e^σ")
    func lognormal() throws {
        let d = try Distribution.parse("lognormal(median=1ms,sigma=0.5)")
        let s = samples(d)
        #expect(close(quantile(s, 0.5), 1e6, 0.02))
        #expect(close(quantile(s, 0.8413), 1e6 * exp(0.5), 0.03))
        #expect(close(mean(s), d.mean, 0.02))
    }

    @Test("normal: mean and spread (cut at 0)")
    func normal() throws {
        let d = try Distribution.parse("normal(mean=2ms,sd=0.5ms)")
        let s = samples(d)
        #expect(close(mean(s), 2e6, 0.01))
        #expect(close(quantile(s, 0.8413) - quantile(s, 0.5), 0.5e6, 0.04))
        let cut = samples(try Distribution.parse("normal(mean=0ms,sd=1ms)"))
        #expect(cut.first! == 0 && close(quantile(cut, 0.5), 0, 1) && quantile(cut, 0.49) == 0)
    }

    @Test("mix: weights pick components")
    func mixture() throws {
        let d = try Distribution.parse("mix(0.9*const(1ms),0.1*exp(mean=10ms))")
        let s = samples(d)
        #expect(close(mean(s), 0.9e6 + 1e6, 0.03))
        #expect(close(Double(s.filter { $0 == 1e6 }.count) / Double(s.count), 0.9, 0.01))
        #expect(d.render(.duration) == "mix(0.9*const(1ms),0.1*exp(mean=10ms))")
    }

    @Test("bad distributions name the bad part", arguments: [
        ("exp(mean=2)", "needs a unit"),
        ("exp(mean=2xs)", "'xs'"),
        ("foo(1ms)", "unknown distribution 'foo'"),
        ("uniform(5ms,1ms)", "low is above high"),
        ("mix(0.5*const(1ms),0.4*const(2ms))", "sum to 0.9"),
        ("pareto(xm=1ms)", "missing alpha"),
        ("exp(mean=2ms", "missing ')'"),
        ("exp(mean=2ms) x", "unexpected 'x'"),
        ("lognormal(median=-1ms,sigma=1)", "negative"),
    ])
    func errors(text: String, expected: String) {
        do {
            _ = try Distribution.parse(text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect("\(error)".contains(expected), "'\(text)': \(error)")
        }
    }

    @Test("durations")
    func durations() throws {
        #expect(try Distribution.parseDuration("100ms") == 1e8)
        #expect(try Distribution.parseDuration("1.5s") == 1.5e9)
        #expect(try Distribution.parseDuration("250us") == 2.5e5)
        #expect(try Distribution.parseDuration("2m") == 120e9)
        #expect(try Distribution.parseDuration("0") == 0)
        #expect(throws: DistributionError.self) { try Distribution.parseDuration("10") }
        #expect(throws: DistributionError.self) { try Distribution.parseDuration("-5ms") }
    }
}

@Suite("Fault timeline")
struct FaultTimelineTests {
    @Test("random failures: each node is down a fraction P of the time, deterministically for a seed")
    func downFraction() {
        for p in [0.05, 0.2] {
            let plan = FaultPlan(failureRate: p, mttr: 500_000_000)
            let horizon: UInt64 = 20_000_000_000_000  // 20,000 s: about 40,000 repairs per node at p = 0.2
            let t = plan.timeline(nodes: 3, horizon: horizon, seed: 7)
            #expect(t.count == plan.timeline(nodes: 3, horizon: horizon, seed: 7).count)
            var down = [Double](repeating: 0, count: 3)
            for (i, e) in t.enumerated() {
                let end = i + 1 < t.count ? t[i + 1].at : horizon
                for n in 0..<3 where e.conditions[n].down { down[n] += Double(end - e.at) }
            }
            for n in 0..<3 {
                let fraction = down[n] / Double(horizon)
                #expect(abs(fraction - p) < 0.1 * p, "node \(n): down \(fraction), want \(p)")
            }
        }
    }

    @Test("a stretch's exposure: the fraction of node-time down and the down periods in it, by hand")
    func exposureByHand() {
        let plan = FaultPlan(scripted: [
            ScriptedFault(at: 1_000, for: 1_000, .kill([1])),
            ScriptedFault(at: 1_500, for: 200, .kill([0, 2])),
            ScriptedFault(at: 1_550, for: 10, .stall([1])),  // (a change that is no failure)
        ])
        let t = plan.timeline(nodes: 3, horizon: 10_000, seed: 1)
        #expect(FaultExposure(t, until: 1_000).failures == 0 && FaultExposure(t, until: 1_000).downFraction == 0)
        let early = FaultExposure(t, until: 1_200)
        #expect(early.failures == 1 && abs(early.downFraction - 200.0 / 3_600) < 1e-12)
        let late = FaultExposure(t, until: 1_600)  // node 1 600, nodes 0 and 2 100 each
        #expect(late.failures == 3 && abs(late.downFraction - 800.0 / 4_800) < 1e-12, "\(late)")
        // A node down at the stretch's start is a down period of it.
        let from = FaultPlan(scripted: [ScriptedFault(at: 0, for: 50, .kill([2]))]).timeline(nodes: 3, horizon: 100, seed: 1)
        #expect(FaultExposure(from, until: 100).failures == 1)
    }

    @Test("nodes up per second: the last second, cut short by the run's end, counts only the part before it")
    func nodesUpLastSecond() {
        let t = FaultPlan(scripted: [ScriptedFault(at: 900_000_000, for: 1_000_000_000, .kill([1]))])
            .timeline(nodes: 3, horizon: 10_000_000_000, seed: 1)
        // A 0.6 s run ended before the node went down (over the whole second it counted 2.9 nodes up).
        #expect(nodesUpPerSecond(t, end: 600_000_000) == [3])
        // 1.5 s: the first second 2.9, the second [1, 1.5) s all with node 1 down (over [1, 2) s: 2.1).
        let up = nodesUpPerSecond(t, end: 1_500_000_000)
        #expect(up.count == 2 && abs(up[0] - 2.9) < 1e-9 && abs(up[1] - 2) < 1e-9, "\(up)")
        // An end on a second's boundary: that second is empty, and gets the nodes up at the end.
        #expect(nodesUpPerSecond(t, end: 1_000_000_000).last == 2)
    }

    @Test("random failures: the down periods a stretch gets are what expectedFailures says")
    func expectedFailures() {
        for p in [0.05, 0.2] {
            let plan = FaultPlan(failureRate: p, mttr: 500_000_000)
            let seconds = 20_000.0
            let t = plan.timeline(nodes: 5, horizon: UInt64(seconds * 1e9), seed: 11)
            let seen = Double(FaultExposure(t, until: UInt64(seconds * 1e9)).failures)
            let expected = plan.expectedFailures(nodes: 5, seconds: seconds)
            // 10,000 and 40,000 down periods; a count of renewals varies less than a Poisson count of its mean.
            #expect(abs(seen - expected) < 4 * expected.squareRoot(), "p \(p): \(seen) down periods, expected \(expected)")
        }
        #expect(FaultPlan().expectedFailures(nodes: 5, seconds: 100) == 0)
    }

    @Test("scripted faults apply in their windows")
    func scripted() {
        let plan = FaultPlan(scripted: [
            ScriptedFault(at: 1_000, for: 1_000, .kill([1])),
            ScriptedFault(at: 1_500, for: 1_000, .partition([[0], [1, 2]])),
            ScriptedFault(at: 3_000, for: 10, .stall([0, 2])),
        ])
        let t = plan.timeline(nodes: 3, horizon: 10_000, seed: 1)
        func at(_ time: UInt64) -> [NodeCondition] { t.last { $0.at <= time }!.conditions }
        #expect(at(0).allSatisfy { $0 == NodeCondition() })
        #expect(at(1_200)[1].down && !at(1_200)[0].down)
        #expect(!at(1_700)[0].reaches(at(1_700)[1]) && at(1_700)[1].reaches(at(1_700)[2]))
        #expect(!at(2_100)[1].down && at(2_100)[0].reaches(at(2_100)[1]) == false)
        #expect(at(2_600)[0].reaches(at(2_600)[1]))
        #expect(at(3_005)[0].stalled && !at(3_005)[1].stalled && at(3_005)[2].stalled)
        #expect(at(3_011).allSatisfy { $0 == NodeCondition() })
    }
}
