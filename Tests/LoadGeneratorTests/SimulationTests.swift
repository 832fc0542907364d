import ClusterRuntime
import Foundation
import Testing
@testable import LoadGenerator
@testable import Reports
@testable import ReplicationCore

/// A virtual-time run configuration.
func virtualConfig(seed: UInt64 = 1, _ edit: (inout RunConfig) -> Void = { _ in }) -> RunConfig {
    var c = RunConfig()
    c.clock = "virtual"
    c.keys = 2_000
    c.threads = 2
    c.concurrency = 16
    c.duration = 2_000_000_000
    c.warmup = 200_000_000
    c.delays = Delays(all: .exponential(mean: 1_000_000))
    c.seed = seed
    c.core.seed = seed
    edit(&c)
    return c
}

/// An independent Monte Carlo of PBS's WARS model (Bailis et al.), sharing no code with the simulator: a write
/// goes to n replicas (delay W), each acks (A); it commits at the w-th ack. A read issued t after the commit goes to
/// n replicas (R), each answers (S); it returns after the r first answers and is consistent if one of them had the
/// write when the read reached it: W ≤ commit + t + R.
func warsConsistency(n: Int, w: Int, r: Int, means: (w: Double, a: Double, r: Double, s: Double), t: Double,
                     trials: Int, seed: UInt64) -> Double {
    var state = seed | 1
    func uniform() -> Double {  // splitmix64, not the project's generator
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Double(z >> 11) + 0.5) / 9_007_199_254_740_992
    }
    func exp(_ mean: Double) -> Double { -mean * Foundation.log(uniform()) }
    var consistent = 0
    for _ in 0..<trials {
        let W = (0..<n).map { _ in exp(means.w) }
        let commit = zip(W, (0..<n).map { _ in exp(means.a) }).map { $0 + $1 }.sorted()[w - 1]
        let R = (0..<n).map { _ in exp(means.r) }
        let S = (0..<n).map { _ in exp(means.s) }
        let first = (0..<n).sorted { R[$0] + S[$0] < R[$1] + S[$1] }.prefix(r)
        if first.contains(where: { W[$0] <= commit + t + R[$0] }) { consistent += 1 }
    }
    return Double(consistent) / Double(trials)
}

@Suite("Virtual time", .serialized)
struct SimulationTests {
    @Test("the same seed gives byte-identical summary.csv and timeseries.csv; another seed does not")
    func deterministic() throws {
        func files(_ seed: UInt64) throws -> (String, String) {
            let r = Runner(config: virtualConfig(seed: seed) { $0.faults.failureRate = 0.1 }).run()
            return (RunReport.csv(RunReport.summaryColumns, RunReport.summaryRows(r)),
                    RunReport.csv(RunReport.timeseriesColumns, RunReport.timeseriesRows(r)))
        }
        let a = try files(7), b = try files(7), c = try files(8)
        #expect(a.0 == b.0, "seed 7: summary.csv differs between two runs")
        #expect(a.1 == b.1, "seed 7: timeseries.csv differs between two runs")
        #expect(a.0 != c.0)
    }

    @Test("PBS: simulated P(consistent | t) agrees with an independent Monte Carlo of WARS (n=3, r=w=1)",
          arguments: [(1.0, 1.0, 1.0, 1.0), (5.0, 1.0, 1.0, 1.0), (1.0, 1.0, 4.0, 1.0), (10.0, 2.0, 1.0, 0.5)])
    func wars(ratios: (Double, Double, Double, Double)) {
        let ms = 1_000_000.0
        let seed: UInt64 = 11
        let offsets: [UInt64] = [0, 1, 3, 10].map { UInt64($0 * ms) }
        let trials = 20_000
        let result = Runner(config: virtualConfig(seed: seed) {
            $0.workload = .visibility
            $0.core.routing = .client
            $0.core.n = 3
            $0.core.w = 1
            $0.core.r = 1
            $0.core.readRepair = false
            $0.core.antiEntropy = false
            $0.core.timeout = 10_000_000_000
            $0.ops = trials
            $0.concurrency = 64
            $0.probeTimes = offsets
            $0.delays = Delays(write: .exponential(mean: ratios.0 * ms), writeAck: .exponential(mean: ratios.1 * ms),
                               read: .exponential(mean: ratios.2 * ms), readResponse: .exponential(mean: ratios.3 * ms))
        }).run()
        #expect(result.visibility.count == offsets.count)
        for point in result.visibility {
            let model = warsConsistency(n: 3, w: 1, r: 1, means: (ratios.0 * ms, ratios.1 * ms, ratios.2 * ms, ratios.3 * ms),
                                        t: Double(point.t), trials: 200_000, seed: 99)
            let sim = point.probability
            #expect(point.reads == trials)
            // Both are estimates: 4 standard errors of their difference.
            let se = (sim * (1 - sim) / Double(point.reads) + model * (1 - model) / 200_000).squareRoot()
            #expect(abs(sim - model) <= 4 * se + 1e-9,
                    "W/A/R/S means \(ratios) ms, t = \(Double(point.t) / ms) ms: simulated \(sim), WARS \(model) (seed \(seed))")
        }
    }
}
