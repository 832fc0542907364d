import Foundation
import Histogram
import Testing
@testable import LoadGenerator
@testable import Reports
import ReplicationCore

@Suite("report statistics read from a histogram's counts")
struct HistogramCountsTests {
    /// Random latency histograms, shaped like the ones runs record (most values near a mode, a long tail, a few
    /// zeros and huge values), and edge cases: empty, one value, one repeated value.
    static func histograms() -> [Histogram<UInt64>] {
        var rng = Xoshiro(seed: 42)
        var out: [Histogram<UInt64>] = [makeLatencyHistogram()]
        var one = makeLatencyHistogram()
        _ = one.record(1_234_567)
        out.append(one)
        var same = makeLatencyHistogram()
        for _ in 0..<1000 { _ = same.record(777) }
        out.append(same)
        for shape in 0..<12 {
            // Other layouts too: coarser precision and a larger unit (the layout is derived, not read).
            var h = shape < 9 ? makeLatencyHistogram()
                : Histogram<UInt64>(lowestDiscernibleValue: [1000, 64, 3][shape - 9], highestTrackableValue: 3_600_000_000_000,
                                    numberOfSignificantValueDigits: [.two, .four, .one][shape - 9])
            let count = [10, 100, 10_000][shape % 3]
            for _ in 0..<count {
                let u = rng.nextDouble()
                var v = UInt64(200_000 * -log(1 - u) * Double(1 + shape))
                if rng.next(below: 50) == 0 { v = UInt64(rng.next(below: 3)) }  // 0, 1, 2 ns
                if rng.next(below: 200) == 0 { v = 1_000_000_000 + UInt64(rng.next(below: 1 << 30)) }
                _ = h.record(v)
            }
            out.append(h)
        }
        return out
    }

    static let percentiles: [Double] = [0, 0.001, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999, 100, 150]

    @Test("percentiles, the mean and the log encoding are the library's own")
    func sameAsLibrary() throws {
        for h in Self.histograms() {
            let counts = HistogramCounts(h)
            #expect(counts.counts != nil, "the histogram's counts were not found by reflection")
            let fast = counts.values(atPercentiles: Self.percentiles)
            for (p, v) in zip(Self.percentiles, fast) {
                #expect(v == h.valueAtPercentile(p), "p\(p) of \(h.totalCount) values")
            }
            // Asked in another order, one at a time: the same answers.
            for (p, v) in zip(Self.percentiles.reversed(), fast.reversed()) { #expect(counts.value(atPercentile: p) == v) }
            #expect(counts.mean == h.mean)
            // The log's bucket counts: every bucket in index order (allValues walks them) up to the last non-zero.
            var all: [UInt64] = []
            for v in h.allValues() { all.append(v.count) }
            let last = all.lastIndex(where: { $0 != 0 }).map { $0 + 1 } ?? 0
            #expect(counts.bucketCounts == Array(all[..<last]))
        }
    }

    @Test("an encoded interval decodes to the histogram's values and counts")
    func encodingRoundTrip() throws {
        let intervals = Self.histograms().enumerated().filter { $0.element.totalCount > 0 }.map {
            HistogramLog.Interval(tag: "t\($0.offset)", start: Double($0.offset), length: 1, histogram: $0.element)
        }
        let text = HistogramLog.write(intervals: intervals, startTime: 0, generator: "test")
        for i in intervals {
            let read = try HistogramLog.read(text, tag: i.tag)
            var values: [UInt64] = [], counts: [UInt64] = []
            for v in i.histogram.recordedValues() {
                values.append(i.histogram.lowestEquivalentForValue(v.value))
                counts.append(v.count)
            }
            #expect(read.values == values && read.counts == counts, "interval \(i.tag)")
        }
    }
}
