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
        let histograms = Self.histograms().filter { $0.totalCount > 0 }
        let intervals = histograms.enumerated().map {
            HistogramLog.Interval(tag: "t\($0.offset)", start: Double($0.offset), length: 1, histogram: $0.element)
        }
        let text = HistogramLog.write(intervals: intervals, startTime: 0, generator: "test")
        for (i, h) in zip(intervals, histograms) {
            let read = try HistogramLog.read(text, tag: i.tag)
            var values: [UInt64] = [], counts: [UInt64] = []
            for v in h.recordedValues() {
                values.append(h.lowestEquivalentForValue(v.value))
                counts.append(v.count)
            }
            #expect(read.values == values && read.counts == counts, "interval \(i.tag)")
        }
    }

    /// The random histograms of the latency layout (the one ``PackedHistogram`` keeps).
    static func latencyHistograms() -> [Histogram<UInt64>] {
        histograms().filter { $0.lowestDiscernibleValue == 1 && $0.numberOfSignificantValueDigits == .three }
    }

    /// What any report reads of a histogram.
    static func answers(_ h: Histogram<UInt64>) -> [UInt64] {
        let c = HistogramCounts(h)
        return c.values(atPercentiles: percentiles) + c.bucketCounts
            + [h.totalCount, h.max, h.maxRecorded, h.min, h.minNonZero, UInt64(c.mean * 1000)]
    }

    @Test("a packed histogram answers percentiles as the histogram, unpacks to it, and encodes as it")
    func packed() throws {
        let hs = Self.latencyHistograms()
        #expect(hs.count >= 10)
        for h in hs {
            let p = PackedHistogram(h)
            #expect(p.values(atPercentiles: Self.percentiles) == HistogramCounts(h).values(atPercentiles: Self.percentiles))
            #expect(p.totalCount == h.totalCount && p.max == h.max)
            let u = p.unpacked()
            #expect(Self.answers(u) == Self.answers(h), "\(h.totalCount) values")
            #expect(HistogramLog.encodeCompressed(u) == HistogramLog.encodeCompressed(h))
            #expect(HistogramLog.Interval(tag: "t", start: 0, length: 1, packed: p).encoded
                    == HistogramLog.Interval(tag: "t", start: 0, length: 1, histogram: h).encoded)
            // A tenth of the whole histogram's counts at most, even for 10,000 values spread over thousands of buckets.
            #expect(p.payload.count * 10 < MemoryLayout<UInt64>.stride * HistogramCounts(h).counts!.count)
        }
    }

    @Test("packed histograms merge as Histogram.add merges them")
    func packedMerge() throws {
        let hs = Self.latencyHistograms()
        for (a, b) in zip(hs, hs.dropFirst(3) + hs.prefix(3)) {
            var sum = a
            sum.add(b)
            let merged = PackedHistogram(merging: [PackedHistogram(a), PackedHistogram(b), .empty])
            #expect(Self.answers(merged.unpacked()) == Self.answers(sum))
            #expect(merged.payload == PackedHistogram(sum).payload && merged.min == sum.min)
        }
        #expect(PackedHistogram(merging: []).totalCount == 0 && PackedHistogram(merging: []).payload.isEmpty)
    }

    @Test("the reporter packs the seconds it will hear no more of, and merges a late sample into one")
    func reporterPacks() throws {
        let hs = Self.latencyHistograms().filter { $0.totalCount > 0 }
        let kinds = OpKind.allCases.count
        // Two threads, seconds -2…9, each sample with one histogram of the list (kind by second); then a late one
        // for second 1, long packed by then.
        var samples: [IntervalSample] = []
        for second in -2..<10 {
            for thread in 0..<2 {
                var histograms = [Histogram<UInt64>?](repeating: nil, count: kinds)
                let kind = (second + 2) % 2
                histograms[kind] = hs[(second + 2 + thread * 5) % hs.count]
                var ok = [Int](repeating: 0, count: kinds)
                ok[kind] = Int(histograms[kind]!.totalCount)
                samples.append(IntervalSample(interval: second, thread: thread, histograms: histograms, ok: ok,
                                              failed: [Int](repeating: 1, count: kinds), staleReads: 1, staleK: 2, maxK: 2))
            }
        }
        var late = samples[6]  // second 1, thread 0
        late.thread = 1
        samples.append(late)
        var reporter = Reporter(kinds: kinds)
        for s in samples {
            reporter.absorb([s])
            #expect(reporter.open.count <= 2, "seconds two before the latest stay whole")
        }
        var expected: [Int: [Histogram<UInt64>?]] = [:]
        var totals = [Histogram<UInt64>](repeating: makeLatencyHistogram(), count: kinds)
        for s in samples {
            var e = expected[s.interval] ?? Array(repeating: nil, count: kinds)
            for k in 0..<kinds {
                guard let h = s.histograms[k] else { continue }
                if e[k] == nil { e[k] = h } else { e[k]!.add(h) }
                if s.interval >= 0 { totals[k].add(h) }
            }
            expected[s.interval] = e
        }
        let records = reporter.intervalRecords(nodes: 3)
        #expect(records.map(\.index) == Array(-2..<10))
        for r in records {
            for k in 0..<kinds {
                #expect(r.histogram(k).map(Self.answers) == expected[r.index]![k].map(Self.answers), "second \(r.index)")
                #expect(r.failed[k] == (r.index == 1 ? 3 : 2))
            }
        }
        for k in 0..<kinds { #expect(Self.answers(reporter.totals[k].histogram) == Self.answers(totals[k])) }
        #expect(reporter.staleReads == 10 * 2 + 1 && reporter.totals[0].failed == 21)
    }
}
