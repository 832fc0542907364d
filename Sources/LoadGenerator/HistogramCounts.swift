import Foundation
import Histogram

/// A latency histogram's counts, read once for the report's many questions of it: percentiles, the mean, the
/// HdrHistogram log encoding.
///
/// hdrhistogram-swift answers each of those by walking every bucket up to the answer through unspecialized generic
/// code (~2 M instructions a percentile); a report asks a few hundred of them, which was a tenth of a
/// 100,000-operation simulation. The answers here are the library's own, bucket for bucket (the tests compare them
/// on random histograms), from one plain pass over the counts.
///
/// The counts array is the histogram's internal stored property, read by reflection; if a future version of the
/// library renames it, every answer falls back to the library's method. The bucket layout follows from the public
/// precision and lowest value, as HdrHistogram defines it.
public struct HistogramCounts: Sendable {
    public let histogram: Histogram<UInt64>
    /// nil: the counts could not be read (answers come from the library).
    let counts: [UInt64]?
    let unitMagnitude: Int
    let subBucketHalfCountMagnitude: Int

    public init(_ histogram: Histogram<UInt64>) {
        self.histogram = histogram
        counts = Mirror(reflecting: histogram).children.first { $0.label == "counts" }?.value as? [UInt64]
        (subBucketHalfCountMagnitude, unitMagnitude) = Self.layout(
            digits: Int(histogram.numberOfSignificantValueDigits.rawValue), lowest: histogram.lowestDiscernibleValue)
    }

    /// HdrHistogram's bucket layout for a precision and a lowest discernible value: sub-buckets of
    /// 2^(halfMagnitude+1) values, the unit 2^unitMagnitude.
    public static func layout(digits: Int, lowest: UInt64) -> (halfMagnitude: Int, unitMagnitude: Int) {
        let largestSingleUnit = 2 * Int(pow(10.0, Double(digits)))
        return (max(0, Int(ceil(log2(Double(largestSingleUnit)))) - 1), 63 - max(1, lowest).leadingZeroBitCount)
    }

    /// The lowest value of the bucket at `index` in HdrHistogram's layout (its `valueFromIndex`): sub-buckets of
    /// 2^(halfMagnitude+1) values, each bucket doubling the unit.
    @inline(__always)
    public static func lowestValue(ofBucket index: Int, halfMagnitude: Int, unitMagnitude: Int) -> UInt64 {
        let halfCount = 1 << halfMagnitude
        var bucket = (index >> halfMagnitude) - 1
        var subBucket = (index & (halfCount - 1)) + halfCount
        if bucket < 0 {
            subBucket -= halfCount
            bucket = 0
        }
        return UInt64(subBucket) << UInt64(bucket + unitMagnitude)
    }

    @inline(__always)
    func value(at index: Int) -> UInt64 {
        Self.lowestValue(ofBucket: index, halfMagnitude: subBucketHalfCountMagnitude, unitMagnitude: unitMagnitude)
    }

    /// `Histogram.valueAtPercentile` for each of `percentiles` (ascending or not), in one pass.
    public func values(atPercentiles percentiles: [Double]) -> [UInt64] {
        let h = histogram
        guard let counts else { return percentiles.map { h.valueAtPercentile($0) } }
        return Self.values(atPercentiles: percentiles, total: h.totalCount, min: h.min, maxRecorded: h.maxRecorded,
                           layout: self) { visit in
            counts.withUnsafeBufferPointer { c in
                for i in c.indices where c[i] != 0 { if !visit(i, c[i]) { return } }
            }
        }
    }

    /// The percentiles of a histogram of `layout`'s bucket layout with these total, `min` and `maxRecorded`, whose
    /// buckets that are not empty `buckets` visits in order (index, count) until the visitor returns false.
    static func values(
        atPercentiles percentiles: [Double], total: UInt64, min lowest: UInt64, maxRecorded highest: UInt64,
        layout: HistogramCounts, buckets: (_ visit: (Int, UInt64) -> Bool) -> Void
    ) -> [UInt64] {
        // The library's count at each percentile, and its answers at 0 and 100.
        var results = [UInt64](repeating: 0, count: percentiles.count)
        var wanted: [(count: UInt64, slot: Int)] = []
        for (slot, p) in percentiles.enumerated() {
            if p == 0 {
                results[slot] = lowest
            } else if p >= 100 {
                results[slot] = highest
            } else {
                let requested = Swift.min(Swift.max(p.nextDown, 0), 100)
                wanted.append((Swift.max(1, UInt64((requested * Double(total) / 100).rounded(.up))), slot))
            }
        }
        wanted.sort { $0.count < $1.count }
        var next = 0
        var cumulative: UInt64 = 0
        buckets { i, count in
            cumulative &+= count
            while next < wanted.count && cumulative >= wanted[next].count {
                let v = layout.histogram.highestEquivalentForValue(layout.value(at: i))
                results[wanted[next].slot] = Swift.max(Swift.min(v, highest), lowest)
                next += 1
            }
            return next < wanted.count
        }
        return results  // a count never reached (an empty histogram) answers 0, as the library does
    }

    public func value(atPercentile p: Double) -> UInt64 { values(atPercentiles: [p])[0] }

    /// `Histogram.mean`.
    public var mean: Double {
        let h = histogram
        guard let counts else { return h.mean }
        if h.totalCount == 0 { return 0 }
        var total: Double = 0
        for (i, c) in counts.enumerated() where c != 0 {
            total += Double(h.medianEquivalentForValue(h.highestEquivalentForValue(value(at: i)))) * Double(c)
        }
        return total / Double(h.totalCount)
    }

    /// Every bucket's count in index order, up to the last that is not zero (what the log encoding holds).
    public var bucketCounts: [UInt64] {
        if let counts {
            guard let last = counts.lastIndex(where: { $0 != 0 }) else { return [] }
            return Array(counts[...last])
        }
        var all: [UInt64] = []
        var lastNonZero = -1
        for (i, v) in histogram.allValues().enumerated() {
            all.append(v.count)
            if v.count != 0 { lastNonZero = i }
        }
        return Array(all[..<(lastNonZero + 1)])
    }
}
