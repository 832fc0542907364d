import Histogram
import SyncPrimitives

/// Latency histograms are in nanoseconds, 3 significant digits, up to an hour.
public func makeLatencyHistogram() -> Histogram<UInt64> {
    Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
}

/// What one thread recorded in one interval (one second).
public struct IntervalSample: @unchecked Sendable {
    public var interval: Int
    public var thread: Int
    /// Latency histograms by op kind (nil: no completion of that kind).
    public var histograms: [Histogram<UInt64>?]
    public var ok: [Int]
    public var failed: [Int]
    public var staleReads: Int
    public var staleK: Int
    public var maxK: Int
}

/// One load-generator thread's recorder: it owns its histograms and counters; once an interval ends, it hands
/// them to the reporter (one lock per second) and starts new ones. Recording a value touches nothing shared.
public struct ThreadRecorder {
    public let thread: Int
    let mailbox: Locked<[IntervalSample]>
    /// Start of interval 0 (the measured phase), ns; intervals before it are the warm-up.
    let origin: UInt64
    public private(set) var interval: Int
    var histograms: [Histogram<UInt64>?]
    var ok: [Int]
    var failed: [Int]
    var staleReads = 0
    var staleK = 0
    var maxK = 0
    var intervalEnd: UInt64

    public init(thread: Int, mailbox: Locked<[IntervalSample]>, origin: UInt64, now: UInt64) {
        self.thread = thread
        self.mailbox = mailbox
        self.origin = origin
        interval = ThreadRecorder.intervalIndex(now, origin: origin)
        intervalEnd = ThreadRecorder.intervalStart(interval + 1, origin: origin)
        histograms = Array(repeating: nil, count: OpKind.allCases.count)
        ok = Array(repeating: 0, count: OpKind.allCases.count)
        failed = ok
    }

    @inline(__always)
    static func intervalIndex(_ t: UInt64, origin: UInt64) -> Int {
        t >= origin ? Int((t - origin) / 1_000_000_000) : -Int((origin - t + 999_999_999) / 1_000_000_000)
    }

    @inline(__always)
    static func intervalStart(_ i: Int, origin: UInt64) -> UInt64 {
        i >= 0 ? origin &+ UInt64(i) * 1_000_000_000 : origin &- UInt64(-i) * 1_000_000_000
    }

    /// Records a completion at `now` (moving to a new interval first if one has begun).
    @inline(__always)
    public mutating func record(_ kind: OpKind, latency: UInt64, ok success: Bool, now: UInt64) {
        if now >= intervalEnd { roll(now: now) }
        if now < intervalEnd &- 1_000_000_000 {
            // Belongs to an interval already handed over (a warm-up operation that completed late).
            recordLate(kind, latency: latency, ok: success, now: now)
            return
        }
        if success {
            ok[kind.rawValue] &+= 1
            if histograms[kind.rawValue] == nil { histograms[kind.rawValue] = makeLatencyHistogram() }
            histograms[kind.rawValue]!.record(latency)
        } else {
            failed[kind.rawValue] &+= 1
        }
    }

    mutating func recordLate(_ kind: OpKind, latency: UInt64, ok success: Bool, now: UInt64) {
        var sample = IntervalSample(
            interval: ThreadRecorder.intervalIndex(now, origin: origin), thread: thread,
            histograms: Array(repeating: nil, count: OpKind.allCases.count),
            ok: Array(repeating: 0, count: OpKind.allCases.count), failed: Array(repeating: 0, count: OpKind.allCases.count),
            staleReads: 0, staleK: 0, maxK: 0)
        if success {
            sample.ok[kind.rawValue] = 1
            var h = makeLatencyHistogram()
            h.record(latency)
            sample.histograms[kind.rawValue] = h
        } else {
            sample.failed[kind.rawValue] = 1
        }
        mailbox.withLock { $0.append(sample) }
    }

    /// Records a stale read (k writes missed).
    @inline(__always)
    public mutating func recordStale(k: Int) {
        staleReads += 1
        staleK += k
        maxK = max(maxK, k)
    }

    /// Hands the current interval to the reporter if `now` is past it.
    public mutating func tick(now: UInt64) { if now >= intervalEnd { roll(now: now) } }

    @usableFromInline
    mutating func roll(now: UInt64) {
        flush()
        interval = ThreadRecorder.intervalIndex(now, origin: origin)
        intervalEnd = ThreadRecorder.intervalStart(interval + 1, origin: origin)
    }

    /// Hands what was recorded to the reporter.
    public mutating func flush() {
        let sample = IntervalSample(interval: interval, thread: thread, histograms: histograms, ok: ok, failed: failed,
                                    staleReads: staleReads, staleK: staleK, maxK: maxK)
        if ok.contains(where: { $0 > 0 }) || failed.contains(where: { $0 > 0 }) {
            mailbox.withLock { $0.append(sample) }
        }
        histograms = Array(repeating: nil, count: OpKind.allCases.count)
        for i in ok.indices {
            ok[i] = 0
            failed[i] = 0
        }
        staleReads = 0
        staleK = 0
        maxK = 0
    }
}
