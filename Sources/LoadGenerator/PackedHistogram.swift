import Histogram

/// A latency histogram put away in HdrHistogram's own encoding of its counts, a byte or two per bucket that holds
/// anything; it answers percentiles as it is, and unpacks to the same histogram.
///
/// A histogram of ``makeLatencyHistogram()`` is 256 KiB of counts (an hour of range at three significant digits),
/// of which a second of latencies fills a few thousand. A run kept one whole for every second and kind it
/// measured — 1.7 MB a second of virtual time; a real-time hour, 6 GB — when what a finished second is asked later
/// is its percentiles and its log line.
///
/// Unpacking gives back what every question the reports ask of the histogram sees: each bucket's count, the total,
/// the exact largest value recorded (`maxRecorded`, which percentiles are clamped to), and `min` (the exact smallest
/// value when none is zero; 0 otherwise). The values recorded inside a bucket are otherwise not kept: a bucket is
/// one count in every answer HdrHistogram gives.
public struct PackedHistogram: Sendable {
    /// The counts as HdrHistogram's V2 encoding has them (the payload of ``HistogramLog``'s blobs): each bucket's
    /// count up to the last that is not zero, ZigZag LEB128, a run of empty buckets as its negated length.
    public let payload: [UInt8]
    public let totalCount: UInt64
    public let maxRecorded: UInt64
    public let min: UInt64

    public init(_ h: Histogram<UInt64>) {
        payload = Self.payload(HistogramCounts(h).bucketCounts)
        totalCount = h.totalCount
        maxRecorded = h.maxRecorded
        min = h.min
    }

    /// The histogram of every value of `parts`, as `Histogram.add` makes it, merged as they are.
    public init(merging parts: [PackedHistogram]) {
        var counts: [UInt64] = []
        for p in parts {
            try! Self.forEachBucket(p.payload[...]) { index, count in
                if index >= counts.count { counts.append(contentsOf: repeatElement(0, count: index + 1 - counts.count)) }
                counts[index] += count
                return true
            }
        }
        payload = Self.payload(counts)
        totalCount = parts.reduce(0) { $0 + $1.totalCount }
        maxRecorded = parts.map(\.maxRecorded).max() ?? 0
        // (`Histogram.min`: 0 when zero was recorded, or nothing; else the smallest value recorded.)
        min = counts.first ?? 0 > 0 ? 0 : parts.filter { $0.totalCount > 0 }.map(\.min).min() ?? 0
    }

    /// Nothing recorded.
    public static let empty = PackedHistogram(makeLatencyHistogram())

    /// The bucket layout of every latency histogram.
    public static let layout = HistogramCounts(makeLatencyHistogram())

    /// `Histogram.max`: the highest value equivalent to the largest recorded.
    public var max: UInt64 { maxRecorded == 0 ? 0 : Self.layout.histogram.highestEquivalentForValue(maxRecorded) }

    /// `Histogram.valueAtPercentile` for each of `percentiles`, read from the encoding.
    public func values(atPercentiles percentiles: [Double]) -> [UInt64] {
        HistogramCounts.values(atPercentiles: percentiles, total: totalCount, min: min, maxRecorded: maxRecorded,
                               layout: Self.layout) { visit in try! Self.forEachBucket(payload[...]) { visit($0, $1) } }
    }

    /// The histogram, as ``init(_:)`` was given it (in every answer it gives).
    public func unpacked() -> Histogram<UInt64> {
        var h = makeLatencyHistogram()
        let last = payload.isEmpty ? -1 : (try! Self.lastBucket(payload[...]))
        try! Self.forEachBucket(payload[...]) { index, count in
            var count = count
            // The largest value is in the last bucket, the smallest (not zero) in the first other than zero's: each
            // recorded exactly there, the rest at the bucket's lowest value (any value of a bucket counts as it).
            if index == last && maxRecorded != 0 {
                h.record(maxRecorded)
                count -= 1
            }
            let lowest = Self.layout.value(at: index)
            if count > 0 { h.record(lowest == 0 ? 0 : Swift.max(lowest, min), count: count) }
            return true
        }
        return h
    }

    /// The V2 encoding of `counts` (a histogram's, up to its last that is not zero).
    public static func payload(_ counts: [UInt64]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < counts.count {
            let c = counts[i]
            i += 1
            if c == 0 {
                var zeros: Int64 = 1
                while i < counts.count && counts[i] == 0 {
                    zeros += 1
                    i += 1
                }
                putZigZag(&out, zeros > 1 ? -zeros : 0)
            } else {
                putZigZag(&out, Int64(c))
            }
        }
        return out
    }

    static func putZigZag(_ out: inout [UInt8], _ value: Int64) {
        // Java HdrHistogram's ZigZagEncoding.putLong: 7 bits a byte for 8 bytes, then a full ninth byte.
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        for _ in 0..<8 {
            if v >> 7 == 0 {
                out.append(UInt8(v))
                return
            }
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(truncatingIfNeeded: v))
    }

    public struct Malformed: Error {}

    /// Calls `body` with the index and count of every bucket of a V2 payload that is not empty, in order, until it
    /// returns false. Throws if the payload ends inside a number, or skips more buckets than any histogram has.
    public static func forEachBucket(_ b: ArraySlice<UInt8>, _ body: (Int, UInt64) -> Bool) throws {
        var pos = b.startIndex, index = 0
        while pos < b.endIndex {
            // ZigZag LEB128, 7 bits a byte for 8 bytes, then a full ninth byte.
            var raw: UInt64 = 0
            var shift: UInt64 = 0
            for i in 0..<9 {
                guard pos < b.endIndex else { throw Malformed() }
                let byte = b[pos]
                pos += 1
                if i == 8 {
                    raw |= UInt64(byte) << 56
                    break
                }
                raw |= UInt64(byte & 0x7F) << shift
                shift += 7
                if byte & 0x80 == 0 { break }
            }
            let v = Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
            if v < 0 {
                guard v > -(1 << 40), index < 1 << 40 else { throw Malformed() }  // (no histogram has such runs)
                index += Int(-v)
            } else {
                if v > 0 && !body(index, UInt64(v)) { return }
                index += 1
            }
        }
    }

    /// The index of the last bucket of a V2 payload that is not empty (-1: none).
    static func lastBucket(_ b: ArraySlice<UInt8>) throws -> Int {
        var last = -1
        try forEachBucket(b) { index, _ in
            last = index
            return true
        }
        return last
    }
}
