import Histogram
import SyncPrimitives

/// Latency histograms are in nanoseconds, 3 significant digits, up to an hour.
@inlinable
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

/// One op kind's histogram and counts within an interval.
public struct KindRecord {
    public var histogram = makeLatencyHistogram()
    public var ok = 0
    public var failed = 0
    @inlinable public init() {}
}

/// One load-generator thread's recorder: it owns its histograms and counters; once an interval ends, it hands
/// them to the reporter (one lock per second) and starts new ones. Recording a value touches nothing shared.
public struct ThreadRecorder {
    public let thread: Int
    @usableFromInline let mailbox: Locked<[IntervalSample]>
    /// Start of interval 0 (the measured phase), ns; intervals before it are the warm-up.
    @usableFromInline var origin: UInt64
    public private(set) var interval: Int
    /// Per op kind: its histogram and counts. A tuple, not an array: recording then checks no array for
    /// uniqueness (an optional histogram per kind in an array made every record a copy).
    @usableFromInline var kinds: (KindRecord, KindRecord, KindRecord, KindRecord, KindRecord)
    @usableFromInline var staleReads = 0
    @usableFromInline var staleK = 0
    @usableFromInline var maxK = 0
    @usableFromInline var intervalEnd: UInt64

    public init(thread: Int, mailbox: Locked<[IntervalSample]>, origin: UInt64, now: UInt64) {
        self.thread = thread
        self.mailbox = mailbox
        self.origin = origin
        interval = ThreadRecorder.intervalIndex(now, origin: origin)
        intervalEnd = ThreadRecorder.intervalStart(interval + 1, origin: origin)
        kinds = (KindRecord(), KindRecord(), KindRecord(), KindRecord(), KindRecord())
    }

    /// Counts intervals from `origin` from now on: for a recorder made before its run's phases were known, that
    /// has recorded nothing yet (its histograms are kept, not made again).
    public mutating func start(origin: UInt64, now: UInt64) {
        self.origin = origin
        interval = ThreadRecorder.intervalIndex(now, origin: origin)
        intervalEnd = ThreadRecorder.intervalStart(interval + 1, origin: origin)
    }

    /// Runs `body` on the record of `kind`.
    @inlinable @inline(__always)
    mutating func withKind<R>(_ kind: OpKind, _ body: (inout KindRecord) -> R) -> R {
        withUnsafeMutablePointer(to: &kinds) { p in
            p.withMemoryRebound(to: KindRecord.self, capacity: 5) { body(&$0[kind.rawValue]) }
        }
    }

    @inline(__always)
    @inlinable
    static func intervalIndex(_ t: UInt64, origin: UInt64) -> Int {
        t >= origin ? Int((t - origin) / 1_000_000_000) : -Int((origin - t + 999_999_999) / 1_000_000_000)
    }

    @inline(__always)
    @inlinable
    static func intervalStart(_ i: Int, origin: UInt64) -> UInt64 {
        i >= 0 ? origin &+ UInt64(i) * 1_000_000_000 : origin &- UInt64(-i) * 1_000_000_000
    }

    /// Records a completion at `now` (moving to a new interval first if one has begun).
    @inline(__always)
    @inlinable
    public mutating func record(_ kind: OpKind, latency: UInt64, ok success: Bool, now: UInt64) {
        if now >= intervalEnd { roll(now: now) }
        if now &+ 1_000_000_000 < intervalEnd {
            // Belongs to an interval already handed over (a warm-up operation that completed late). (Not
            // `intervalEnd - 1 s`: in virtual time an interval can end before 1 s, and the wrapped difference made
            // every completion of a short warm-up "late", each a sample with its own histogram: 1.4 GB for 100
            // slots and 100 ms.)
            recordLate(kind, latency: latency, ok: success, now: now)
            return
        }
        withKind(kind) { k in
            if success {
                k.ok &+= 1
                k.histogram.record(latency)
            } else {
                k.failed &+= 1
            }
        }
    }

    @usableFromInline
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
    @inlinable
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
        var sample = IntervalSample(
            interval: interval, thread: thread, histograms: [], ok: [], failed: [], staleReads: staleReads,
            staleK: staleK, maxK: maxK)
        for kind in OpKind.allCases {
            withKind(kind) { k in
                sample.histograms.append(k.histogram.totalCount > 0 ? k.histogram : nil)
                sample.ok.append(k.ok)
                sample.failed.append(k.failed)
                // Fresh histograms for the next interval; the handed-over ones belong to the reporter now.
                if k.histogram.totalCount > 0 { k.histogram = makeLatencyHistogram() }
                k.ok = 0
                k.failed = 0
            }
        }
        if sample.ok.contains(where: { $0 > 0 }) || sample.failed.contains(where: { $0 > 0 }) {
            mailbox.withLock { $0.append(sample) }
        }
        staleReads = 0
        staleK = 0
        maxK = 0
    }
}
