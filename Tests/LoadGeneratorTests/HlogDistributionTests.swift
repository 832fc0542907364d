import ClusterRuntime
import Foundation
import Histogram
import Testing
@testable import LoadGenerator
@testable import Reports
@testable import ReplicationCore

@Suite("hlog distributions")
struct HlogDistributionTests {
    @Test("a log written by the project reads back with the same counts, and hlog(FILE,TAG) resamples it")
    func roundTrip() throws {
        var a = makeLatencyHistogram(), b = makeLatencyHistogram()
        var rng = Xoshiro.derive(5, 5)
        for _ in 0..<20_000 { a.record(UInt64(-2_000_000 * log(1 - rng.nextDouble())) + 1) }  // exp, mean 2 ms
        for _ in 0..<1_000 { b.record(50_000_000) }
        let text = HistogramLog.write(intervals: [
            .init(tag: "read", start: 0, length: 1, histogram: a),
            .init(tag: "update", start: 0, length: 1, histogram: b),
            .init(tag: "read", start: 1, length: 1, histogram: a),
        ], startTime: 0, generator: "test")
        let counts = try HistogramLog.read(text, tag: "read")
        #expect(counts.intervals == 2)
        #expect(counts.counts.reduce(0, +) == 40_000)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qb-\(getpid()).hlog").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let d = try Distribution.parse("hlog(\(file),read)", hlogLoader: HistogramLog.distribution(file:tag:))
        #expect(abs(d.mean - a.mean) / a.mean < 0.01, "mean \(d.mean) vs \(a.mean): \(counts.values.prefix(5)) \(counts.counts.prefix(5))")
        var sum = 0.0
        for _ in 0..<100_000 { sum += d.sample(&rng) }
        #expect(abs(sum / 100_000 - a.mean) / a.mean < 0.03)
        let all = try Distribution.parse("hlog(\(file))", hlogLoader: HistogramLog.distribution(file:tag:))
        #expect(all.mean > d.mean)  // the 50 ms updates are in
        #expect(throws: DistributionError.self) {
            try Distribution.parse("hlog(\(file),nosuch)", hlogLoader: HistogramLog.distribution(file:tag:))
        }
    }
}
