import CZlib
import Foundation
import Histogram

/// HdrHistogram's encodings, written by the project: the V2 compressed histogram blob and the interval log
/// (format 1.3) that HdrHistogram's Java and Python readers read.
public enum HistogramLog {
    static let encodingCookie: UInt32 = 0x1C84_9313
    static let compressedCookie: UInt32 = 0x1C84_9314

    /// The V2 uncompressed encoding: 40-byte header, then counts as ZigZag LEB128 with runs of zeros as negative
    /// counts.
    public static func encodeUncompressed(_ h: Histogram<UInt64>) -> [UInt8] {
        var payload: [UInt8] = []
        var counts: [UInt64] = []
        counts.reserveCapacity(4096)
        var lastNonZero = -1
        for (i, v) in h.allValues().enumerated() {
            counts.append(v.count)
            if v.count != 0 { lastNonZero = i }
        }
        var i = 0
        while i <= lastNonZero {
            let c = counts[i]
            i += 1
            if c == 0 {
                var zeros: Int64 = 1
                while i <= lastNonZero && counts[i] == 0 {
                    zeros += 1
                    i += 1
                }
                putZigZag(&payload, zeros > 1 ? -zeros : 0)
            } else {
                putZigZag(&payload, Int64(c))
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(40 + payload.count)
        put32(&out, encodingCookie)
        put32(&out, UInt32(payload.count))
        put32(&out, 0)  // normalizing index offset
        put32(&out, UInt32(h.numberOfSignificantValueDigits.rawValue))
        put64(&out, h.lowestDiscernibleValue)
        put64(&out, h.highestTrackableValue)
        put64(&out, (1.0 as Double).bitPattern)  // integer to double value conversion ratio
        out += payload
        return out
    }

    /// The V2 compressed encoding (cookie, length, zlib stream of the uncompressed encoding).
    public static func encodeCompressed(_ h: Histogram<UInt64>) -> [UInt8] {
        let raw = encodeUncompressed(h)
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

    /// One interval of a log.
    public struct Interval {
        public var tag: String
        /// Seconds from the log's StartTime.
        public var start: Double
        public var length: Double
        public var histogram: Histogram<UInt64>
        public init(tag: String, start: Double, length: Double, histogram: Histogram<UInt64>) {
            self.tag = tag
            self.start = start
            self.length = length
            self.histogram = histogram
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
            let blob = Data(encodeCompressed(i.histogram)).base64EncodedString()
            let maxMs = Double(i.histogram.max) / 1e6
            s += "Tag=\(i.tag),\(String(format: "%.3f", i.start)),\(String(format: "%.3f", i.length)),\(String(format: "%.3f", maxMs)),\(blob)\n"
        }
        return s
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

    static func put32(_ out: inout [UInt8], _ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    static func put64(_ out: inout [UInt8], _ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }
}
