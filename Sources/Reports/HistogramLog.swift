import CZlib
import Foundation
import Histogram
import ClusterRuntime
import LoadGenerator

/// HdrHistogram's encodings, written by the project: the V2 compressed histogram blob and the interval log
/// (format 1.3) that HdrHistogram's Java and Python readers read.
public enum HistogramLog {
    static let encodingCookie: UInt32 = 0x1C84_9313
    static let compressedCookie: UInt32 = 0x1C84_9314

    /// The V2 uncompressed encoding: 40-byte header, then counts as ZigZag LEB128 with runs of zeros as negative
    /// counts (``PackedHistogram/payload``).
    public static func encodeUncompressed(_ h: Histogram<UInt64>) -> [UInt8] {
        encodeUncompressed(payload: PackedHistogram.payload(HistogramCounts(h).bucketCounts), of: h)
    }

    /// The V2 uncompressed encoding of a histogram of `layout`'s precision and range whose counts are `payload`.
    static func encodeUncompressed(payload: [UInt8], of layout: Histogram<UInt64>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(40 + payload.count)
        put32(&out, encodingCookie)
        put32(&out, UInt32(payload.count))
        put32(&out, 0)  // normalizing index offset
        put32(&out, UInt32(layout.numberOfSignificantValueDigits.rawValue))
        put64(&out, layout.lowestDiscernibleValue)
        put64(&out, layout.highestTrackableValue)
        put64(&out, (1.0 as Double).bitPattern)  // integer to double value conversion ratio
        out += payload
        return out
    }

    /// The V2 compressed encoding (cookie, length, zlib stream of the uncompressed encoding).
    public static func encodeCompressed(_ h: Histogram<UInt64>) -> [UInt8] { compress(encodeUncompressed(h)) }

    static func compress(_ raw: [UInt8]) -> [UInt8] {
        var destLen = compressBound(uLong(raw.count))
        var dest = [UInt8](repeating: 0, count: Int(destLen))
        let rc = raw.withUnsafeBufferPointer { src in
            dest.withUnsafeMutableBufferPointer { d in
                compress2(d.baseAddress, &destLen, src.baseAddress, uLong(raw.count), Z_DEFAULT_COMPRESSION)
            }
        }
        precondition(rc == Z_OK, "zlib compress2 failed: \(rc)")
        var out: [UInt8] = []
        put32(&out, compressedCookie)
        put32(&out, UInt32(destLen))
        out += dest.prefix(Int(destLen))
        return out
    }

    /// One interval of a log: its histogram, encoded.
    public struct Interval {
        public var tag: String
        /// Seconds from the log's StartTime.
        public var start: Double
        public var length: Double
        /// The histogram's V2 compressed encoding, and its largest value's level (ns).
        let encoded: [UInt8]
        let max: UInt64

        public init(tag: String, start: Double, length: Double, histogram: Histogram<UInt64>) {
            (self.tag, self.start, self.length) = (tag, start, length)
            encoded = encodeCompressed(histogram)
            max = histogram.max
        }

        /// An interval of a latency histogram (``makeLatencyHistogram()``) as packed: encoded without unpacking it.
        public init(tag: String, start: Double, length: Double, packed: PackedHistogram) {
            (self.tag, self.start, self.length) = (tag, start, length)
            encoded = compress(encodeUncompressed(payload: packed.payload, of: PackedHistogram.layout.histogram))
            max = packed.max
        }
    }

    /// The interval log text. Values are ns; Interval_Max is written in ms, as HdrHistogram's tools expect.
    public static func write(intervals: [Interval], startTime: Double, generator: String) -> String {
        var s = "#[Logged with \(generator)]\n"
        s += "#[Histogram log format version 1.3]\n"
        let date = Date(timeIntervalSince1970: startTime)
        s += "#[StartTime: \(String(format: "%.3f", startTime)) (seconds since epoch), \(date)]\n"
        s += "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
        for i in intervals {
            let blob = Data(i.encoded).base64EncodedString()
            let maxMs = Double(i.max) / 1e6
            s += "Tag=\(i.tag),\(String(format: "%.3f", i.start)),\(String(format: "%.3f", i.length)),\(String(format: "%.3f", maxMs)),\(blob)\n"
        }
        return s
    }

    static func put32(_ out: inout [UInt8], _ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    static func put64(_ out: inout [UInt8], _ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    // MARK: - Reading

    /// What a log holds once read: for each value (the lowest of its bucket, in the log's units) its count.
    public struct Counts: Equatable {
        public var values: [UInt64] = []
        public var counts: [UInt64] = []
        public var intervals = 0
    }

    public struct ReadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads an interval log (format 1.2/1.3, V2 compressed histograms, as HdrHistogram's tools and this project
    /// write them) and sums its intervals, only those tagged `tag` if one is given.
    public static func read(_ text: String, tag: String? = nil) throws -> Counts {
        var total: [UInt64: UInt64] = [:]
        var intervals = 0
        for line in text.split(whereSeparator: \.isNewline) {
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("\"") || line.hasPrefix("StartTimestamp") { continue }
            var fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            var lineTag: String?
            if fields.first?.hasPrefix("Tag=") == true { lineTag = String(fields.removeFirst().dropFirst(4)) }
            guard fields.count >= 4 else { throw ReadError(description: "not an interval line: '\(line.prefix(60))'") }
            if let tag, lineTag != tag { continue }
            guard let blob = Data(base64Encoded: fields[3]) else {
                throw ReadError(description: "interval histogram is not base64: '\(fields[3].prefix(20))…'")
            }
            for (v, c) in try decodeCompressed([UInt8](blob)) { total[v, default: 0] += c }
            intervals += 1
        }
        var out = Counts()
        for v in total.keys.sorted() {
            out.values.append(v)
            out.counts.append(total[v]!)
        }
        out.intervals = intervals
        return out
    }

    /// Decodes one V2 compressed histogram into (value, count) pairs.
    public static func decodeCompressed(_ bytes: [UInt8]) throws -> [(UInt64, UInt64)] {
        guard bytes.count >= 8, get32(bytes, 0) == compressedCookie else {
            throw ReadError(description: "not a V2 compressed histogram (bad cookie)")
        }
        let length = Int(get32(bytes, 4))
        guard bytes.count >= 8 + length else { throw ReadError(description: "truncated histogram") }
        var capacity = max(4096, length * 8)
        while true {
            var out = [UInt8](repeating: 0, count: capacity)
            var outLen = uLong(capacity)
            let rc = out.withUnsafeMutableBufferPointer { o in
                bytes.withUnsafeBufferPointer { b in
                    uncompress(o.baseAddress, &outLen, b.baseAddress! + 8, uLong(length))
                }
            }
            if rc == Z_BUF_ERROR && capacity < 1 << 28 {
                capacity *= 4
                continue
            }
            guard rc == Z_OK else { throw ReadError(description: "histogram does not inflate (zlib \(rc))") }
            return try decodeUncompressed(Array(out.prefix(Int(outLen))))
        }
    }

    /// Decodes the V2 uncompressed encoding into (value, count) pairs, by HdrHistogram's bucket layout.
    static func decodeUncompressed(_ b: [UInt8]) throws -> [(UInt64, UInt64)] {
        guard b.count >= 40, get32(b, 0) == encodingCookie else { throw ReadError(description: "bad histogram encoding cookie") }
        let payload = Int(get32(b, 4))
        let digits = Int(get32(b, 12))
        let lowest = max(1, get64(b, 16))
        guard (0...5).contains(digits), b.count >= 40 + payload else { throw ReadError(description: "bad histogram header") }
        let (halfMagnitude, unitMagnitude) = HistogramCounts.layout(digits: digits, lowest: lowest)
        func value(at index: Int) -> UInt64 {
            HistogramCounts.lowestValue(ofBucket: index, halfMagnitude: halfMagnitude, unitMagnitude: unitMagnitude)
        }
        var out: [(UInt64, UInt64)] = []
        do {
            try PackedHistogram.forEachBucket(b[40..<(40 + payload)]) { index, count in
                out.append((value(at: index), count))
                return true
            }
        } catch {
            throw ReadError(description: "histogram counts truncated or malformed")
        }
        return out
    }

    static func get32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(b[at + $1]) }
    }

    static func get64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 << 8 | UInt64(b[at + $1]) }
    }

    /// `hlog(FILE[,TAG])` for the distribution grammar: delays resampled from a recorded log (values in ns, as
    /// quorumbench writes them).
    public static func distribution(file: String, tag: String?) throws -> Distribution {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw DistributionError("hlog: cannot read '\(file)'")
        }
        let counts: Counts
        do { counts = try read(text, tag: tag) } catch let e as ReadError { throw DistributionError("hlog '\(file)': \(e.description)") }
        guard !counts.values.isEmpty else {
            throw DistributionError("hlog '\(file)' has no recorded values" + (tag.map { " tagged '\($0)'" } ?? ""))
        }
        var cumulative: [UInt64] = []
        var sum: UInt64 = 0
        for c in counts.counts {
            sum += c
            cumulative.append(sum)
        }
        return .empirical(.init(values: counts.values.map { Double($0) }, cumulative: cumulative,
                                source: tag.map { "\(file),\($0)" } ?? file))
    }
}
