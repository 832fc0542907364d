import Histogram

/// Merges the threads' interval samples off the hot path: per interval (for the time series and the .hlog) and in
/// total over the measured intervals (index ≥ 0). Percentiles always come from merged histograms.
///
/// An interval stays whole while samples may still come for it, and is packed (``PackedHistogram``) once samples
/// come for two intervals after it: memory then grows by a few kilobytes a second of run, not by a 256 KiB
/// histogram per kind. A late sample for a packed interval unpacks it again.
struct Reporter {
    let kinds: Int
    /// Intervals samples may still come for, whole.
    var open: [Int: Interval] = [:]
    /// Intervals finished, packed.
    var packed: [Int: IntervalRecord] = [:]
    /// The latest interval any sample was for.
    var newest = Int.min
    /// Per kind, over the measured intervals.
    private(set) var totals: [KindTotals]
    var staleReads = 0
    var staleK = 0
    var maxK = 0

    struct Interval {
        var histograms: [Histogram<UInt64>?]
        var ok: [Int]
        var failed: [Int]
    }

    init(kinds: Int) {
        self.kinds = kinds
        totals = Array(repeating: KindTotals(), count: kinds)
    }

    mutating func absorb(_ samples: [IntervalSample]) {
        if samples.isEmpty { return }
        for s in samples {
            var record = open.removeValue(forKey: s.interval) ?? reopen(s.interval)
            for k in 0..<kinds {
                record.ok[k] += s.ok[k]
                record.failed[k] += s.failed[k]
                if let h = s.histograms[k] {
                    if record.histograms[k] == nil { record.histograms[k] = h } else { record.histograms[k]!.add(h) }
                }
            }
            open[s.interval] = record
            newest = max(newest, s.interval)
            if s.interval >= 0 {
                for k in 0..<kinds {
                    totals[k].ok += s.ok[k]
                    totals[k].failed += s.failed[k]
                    if let h = s.histograms[k] { totals[k].histogram.add(h) }
                }
                staleReads += s.staleReads
                staleK += s.staleK
                maxK = max(maxK, s.maxK)
            }
        }
        for index in open.keys where index < newest - 1 { pack(index) }
    }

    /// Interval `index` whole: as packed, or new.
    mutating func reopen(_ index: Int) -> Interval {
        guard let r = packed.removeValue(forKey: index) else {
            return Interval(histograms: Array(repeating: nil, count: kinds), ok: Array(repeating: 0, count: kinds),
                            failed: Array(repeating: 0, count: kinds))
        }
        return Self.unpack(r)
    }

    static func unpack(_ r: IntervalRecord) -> Interval {
        Interval(histograms: r.latencies.map { $0?.unpacked() }, ok: r.ok, failed: r.failed)
    }

    mutating func pack(_ index: Int) {
        guard let i = open.removeValue(forKey: index) else { return }
        packed[index] = IntervalRecord(index: index, latencies: i.histograms.map { $0.map(PackedHistogram.init) },
                                       ok: i.ok, failed: i.failed, nodesUp: 0)
    }

    /// The intervals in order, every one packed; `nodesUp(i)` gives the nodes up in measured second i (warm-up:
    /// all).
    mutating func intervalRecords(nodes: Int, nodesUp: (Int) -> Double? = { _ in nil }) -> [IntervalRecord] {
        for index in open.keys { pack(index) }
        return packed.values.sorted { $0.index < $1.index }.map { r in
            var r = r
            r.nodesUp = r.index >= 0 ? nodesUp(r.index) ?? Double(nodes) : Double(nodes)
            return r
        }
    }

    /// ops/s, p99 (µs) and errors of the last complete interval before `current`.
    func recent(before current: Int) -> (Double, Double, Int) {
        guard let r = open[current - 1] ?? packed[current - 1].map(Self.unpack) else { return (0, 0, 0) }
        var h = makeLatencyHistogram()
        for x in r.histograms { if let x { h.add(x) } }
        let ops = r.ok.reduce(0, +) + r.failed.reduce(0, +)
        return (Double(ops), h.totalCount > 0 ? Double(h.valueAtPercentile(99)) / 1000 : 0, r.failed.reduce(0, +))
    }
}
