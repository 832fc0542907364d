import Histogram

/// Merges the threads' interval samples off the hot path: per interval (for the time series and the .hlog) and in
/// total over the measured intervals (index ≥ 0). Percentiles always come from merged histograms.
struct Reporter {
    let kinds: Int
    var intervals: [Int: IntervalRecord] = [:]
    var staleReads = 0
    var staleK = 0
    var maxK = 0

    init(kinds: Int) { self.kinds = kinds }

    mutating func absorb(_ samples: [IntervalSample]) {
        for s in samples {
            var record = intervals[s.interval] ?? IntervalRecord(
                index: s.interval, histograms: Array(repeating: nil, count: kinds),
                ok: Array(repeating: 0, count: kinds), failed: Array(repeating: 0, count: kinds), nodesUp: 0)
            for k in 0..<kinds {
                record.ok[k] += s.ok[k]
                record.failed[k] += s.failed[k]
                if let h = s.histograms[k] {
                    if record.histograms[k] == nil { record.histograms[k] = h } else { record.histograms[k]!.add(h) }
                }
            }
            intervals[s.interval] = record
            if s.interval >= 0 {
                staleReads += s.staleReads
                staleK += s.staleK
                maxK = max(maxK, s.maxK)
            }
        }
    }

    func totals() -> [KindTotals] {
        var t = Array(repeating: KindTotals(), count: kinds)
        for (index, r) in intervals where index >= 0 {
            for k in 0..<kinds {
                t[k].ok += r.ok[k]
                t[k].failed += r.failed[k]
                if let h = r.histograms[k] { t[k].histogram.add(h) }
            }
        }
        return t
    }

    /// The intervals in order; `nodesUp(i)` gives the nodes up in measured second i (warm-up: all).
    func intervalRecords(nodes: Int, nodesUp: (Int) -> Double? = { _ in nil }) -> [IntervalRecord] {
        intervals.values.sorted { $0.index < $1.index }.map { r in
            var r = r
            r.nodesUp = r.index >= 0 ? nodesUp(r.index) ?? Double(nodes) : Double(nodes)
            return r
        }
    }

    /// ops/s, p99 (µs) and errors of the last complete interval before `current`.
    func recent(before current: Int) -> (Double, Double, Int) {
        guard let r = intervals[current - 1] else { return (0, 0, 0) }
        var h = makeLatencyHistogram()
        for x in r.histograms { if let x { h.add(x) } }
        let ops = r.ok.reduce(0, +) + r.failed.reduce(0, +)
        return (Double(ops), h.totalCount > 0 ? Double(h.valueAtPercentile(99)) / 1000 : 0, r.failed.reduce(0, +))
    }
}
