import BufferPool
import Foundation
import Histogram
import LoadGenerator
import ReplicationCore
import ClusterRuntime

/// Writes a run folder exactly as SPEC.md describes it.
public enum RunReport {
    /// Fewer down periods than this expected over a measured phase, and availability at a failure rate is mostly
    /// which failures fell in the run: the fraction of node-time down then varies by 30% of itself and more.
    public static let fewFailures = 20.0

    /// Whether `r` ran with random failures over a measured phase too short to expect ``fewFailures`` of them.
    public static func sawFewFailures(_ r: RunResult) -> Bool {
        r.config.faults.failureRate > 0 && r.expectedFailures < fewFailures
    }

    /// The warning a run that ``sawFewFailures(_:)`` prints.
    public static func fewFailuresLine(_ r: RunResult) -> String {
        "few failures: the measured phase (\(num(r.durationSeconds, 2)) s) could expect \(num(r.expectedFailures, 1)) "
            + "down periods at --failure-rate \(String(format: "%g", r.config.faults.failureRate)) and saw "
            + "\(r.faultExposure?.failures ?? 0): its availability says little about that rate (report.md has more)"
    }

    /// Why availability against a failure rate wants open loop.
    static let closedLoopAvailability = "Closed loop: how many operations a period gets depends on how long they "
        + "take in it (a failing request may hold its slot up to the timeout, or fail at once), so availability "
        + "weighs periods by the cluster's own speed in them, not by time. For availability against a failure "
        + "rate, run open loop (`--rate`): it issues on its schedule whatever the cluster does."

    /// The relative standard deviation of the fraction of node-time down over a stretch that expects `failures`
    /// down periods at failure rate `p`: a node's up/down process forgets its state in τ = mttr·(1 − p), and the
    /// time average of such a two-state process over T has variance 2·p(1 − p)·τ/T; over n nodes, with
    /// failures = n·T·p/mttr, relative to p that is (1 − p)·√(2/failures).
    static func downSpread(_ failures: Double, _ p: Double) -> Double {
        failures > 0 ? (1 - min(p, 0.999)) * (2 / failures).squareRoot() : .infinity
    }

    /// ``downSpread(_:_:)`` in words: "about 30% of itself either way", or, past its own size (where the formula, made
    /// for stretches much longer than a repair, no longer holds), "as much as itself and more".
    static func spreadText(_ failures: Double, _ p: Double) -> String {
        let spread = downSpread(failures, p)
        return spread < 1 ? "about \(num(spread * 100, 0))% of itself either way" : "as much as itself and more"
    }

    public static let summaryColumns = [
        "transport", "clock", "nodes", "n", "w", "r", "quorum", "versioning", "workload", "distribution", "keys",
        "value_size", "threads", "concurrency", "target_rate", "failure_rate", "drop", "seed", "op", "attempted", "ok",
        "failed", "availability", "throughput_ops_s", "mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us",
        "max_us", "stale_reads", "stale_fraction", "max_k_stale", "read_repairs", "hints_stored", "hints_delivered",
        "ae_keys_repaired", "lost_writes", "duration_s",
    ]
    public static let timeseriesColumns = ["t_s", "phase", "op", "ops", "ok", "failed", "p50_us", "p99_us", "p999_us",
                                           "max_us", "nodes_up"]

    /// The kinds a run reports: those in the mix, in SPEC order.
    static func kinds(_ r: RunResult) -> [OpKind] {
        OpKind.allCases.filter { r.config.proportions[$0.rawValue] > 0 || r.totals[$0.rawValue].attempted > 0 }
    }

    static func us(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1000) }
    static func num(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
    /// A rate in ops/s: whole numbers, with a decimal below 100 (a run at 0.5 ops/s said "0 ops/s").
    public static func ops(_ v: Double) -> String { num(v, v < 100 ? 1 : 0) }

    /// One summary row per kind in the mix, plus `all`.
    public static func summaryRows(_ r: RunResult) -> [[String]] {
        let c = r.config
        let prefix: [String] = [
            c.transport, c.clock, "\(c.core.nodes)", "\(c.core.n)", "\(c.core.w)", "\(c.core.r)", c.core.quorum.rawValue,
            c.core.versioning.rawValue, c.workload.rawValue, c.distribution.rawValue, "\(c.keys)", c.valueSizeText,
            "\(c.threads)", "\(c.concurrency)", c.rate.map { num($0, 0) } ?? "", num(c.failureRate, 3), num(c.drop, 3),
            "\(c.seed)",
        ]
        var rows: [[String]] = []
        let readOK = r.totals[OpKind.read.rawValue].ok
        for (name, t, isRead) in kinds(r).map({ ($0.name, r.totals[$0.rawValue], $0 == .read) }) + [("all", r.all, true)] {
            let h = t.histogram
            let has = h.totalCount > 0
            let counts = HistogramCounts(h)
            let ps = counts.values(atPercentiles: [50, 90, 99, 99.9, 99.99])
            func p(_ i: Int) -> String { has ? us(ps[i]) : "0.0" }
            let stale = isRead ? r.staleReads : 0
            let staleFraction = isRead && readOK > 0 ? Double(r.staleReads) / Double(readOK) : 0
            rows.append(prefix + [
                name, "\(t.attempted)", "\(t.ok)", "\(t.failed)",
                String(format: "%.6f", t.attempted > 0 ? Double(t.ok) / Double(t.attempted) : 1),
                num(r.rate(t.ok), 1),
                has ? num(counts.mean / 1000) : "0.0", p(0), p(1), p(2), p(3), p(4), has ? us(h.max) : "0.0",
                "\(stale)", String(format: "%.6f", staleFraction), "\(isRead ? r.maxK : 0)",
                "\(r.counters.readRepairs)", "\(r.counters.hintsStored)", "\(r.counters.hintsDelivered)",
                "\(r.counters.aeKeysRepaired)", "\(r.lostWrites)", num(r.durationSeconds, 3),
            ])
        }
        return rows
    }

    /// RFC 4180: fields with a comma, a quote or a line break are quoted (a value size such as `uniform(64,1024)`).
    public static func csv(_ header: [String], _ rows: [[String]]) -> String {
        func field(_ f: String) -> String {
            f.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f
        }
        return ([header] + rows).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    public static func timeseriesRows(_ r: RunResult) -> [[String]] {
        var rows: [[String]] = []
        let kinds = kinds(r)
        for interval in r.intervals {
            let phase = interval.index < 0 ? "warmup" : "measured"
            func row(_ name: String, _ h: PackedHistogram?, _ ok: Int, _ failed: Int) -> [String] {
                guard let h, h.totalCount > 0 else {
                    return ["\(interval.index)", phase, name, "\(ok + failed)", "\(ok)", "\(failed)",
                            "0.0", "0.0", "0.0", "0.0", num(interval.nodesUp, 2)]
                }
                let ps = h.values(atPercentiles: [50, 99, 99.9])
                return ["\(interval.index)", phase, name, "\(ok + failed)", "\(ok)", "\(failed)",
                        us(ps[0]), us(ps[1]), us(ps[2]), us(h.max), num(interval.nodesUp, 2)]
            }
            var allOK = 0, allFailed = 0
            for k in kinds {
                allOK += interval.ok[k.rawValue]
                allFailed += interval.failed[k.rawValue]
                rows.append(row(k.name, interval.latencies[k.rawValue], interval.ok[k.rawValue], interval.failed[k.rawValue]))
            }
            let some = kinds.compactMap { interval.latencies[$0.rawValue] }
            rows.append(row("all", some.count > 1 ? PackedHistogram(merging: some) : some.first, allOK, allFailed))
        }
        return rows
    }

    /// The measured intervals as HdrHistogram log intervals, one per second per kind, tag = kind, as
    /// timeseries.csv has a row for each: a second in which a kind completed nothing ok (every request failed, as
    /// through an outage) has an empty histogram, not no interval (a run whose every request failed wrote a log of
    /// no intervals at all).
    public static func hlog(_ r: RunResult) -> String {
        var intervals: [HistogramLog.Interval] = []
        for interval in r.intervals where interval.index >= 0 {
            for k in kinds(r) {
                intervals.append(HistogramLog.Interval(
                    tag: k.name, start: r.warmupSeconds + Double(interval.index), length: 1,
                    packed: interval.latencies[k.rawValue] ?? PackedHistogram.empty))
            }
        }
        return HistogramLog.write(intervals: intervals, startTime: r.startTime, generator: "quorumbench")
    }

    public static func latencySVG(_ r: RunResult) -> String {
        var hs = kinds(r).map { ($0.name, r.totals[$0.rawValue].histogram) }
        if hs.count > 1 { hs.append(("all", r.all.histogram)) }
        return Charts.percentileSpectrum(hs, title: "Latency by percentile (measured phase)")
    }

    public static func timelineSVG(_ r: RunResult) -> String {
        var throughput = Series(name: "all operations", points: [])
        var p99: [Series] = kinds(r).map { Series(name: $0.name, points: []) }
        for interval in r.intervals {
            // The measured phase ends inside (or at the start of) the last intervals: rate over the part covered,
            // and nothing for the drain after the end.
            let start = Double(interval.index)
            let covered = start < 0 ? 1 : min(1, r.durationSeconds - start)
            if covered < 0.05 { continue }
            let x = start + covered / 2
            throughput.points.append((x, Double(interval.ok.reduce(0, +) + interval.failed.reduce(0, +)) / covered))
            for (i, k) in kinds(r).enumerated() {
                if let h = interval.latencies[k.rawValue], h.totalCount > 0 {
                    p99[i].points.append((x, Double(h.values(atPercentiles: [99])[0]) / 1e6))
                }
            }
        }
        return Charts.timeline(throughput: [throughput], p99: p99, warmup: r.warmupSeconds,
                               end: max(r.durationSeconds, 1))
    }

    /// The fault timeline as chart bars (nil when the run had no faults).
    public static func faultsSVG(_ r: RunResult) -> String? {
        guard !r.faultTimeline.isEmpty else { return nil }
        let nodes = r.config.core.nodes
        let end = r.durationSeconds
        var bars: [Charts.FaultBar] = []
        // (Within the measured phase: its timeline runs to the end of the last second.)
        func bar(_ node: Int, _ start: Double, _ stop: Double, _ kind: String) {
            if start < end { bars.append(.init(node: node, start: start, end: min(stop, end), kind: kind)) }
        }
        for n in 0..<nodes {
            for kind in ["down", "stalled", "slow", "partitioned"] {
                var since: Double?
                for (i, entry) in r.faultTimeline.enumerated() {
                    let c = entry.conditions[n]
                    let on = kind == "down" ? c.down : kind == "stalled" ? c.stalled : kind == "slow" ? c.slow > 0 : c.group > 0
                    let t = Double(entry.at) / 1e9
                    if on && since == nil { since = t }
                    if !on, let s = since {
                        bar(n, s, t, kind)
                        since = nil
                    }
                    if i == r.faultTimeline.count - 1, let s = since { bar(n, s, end, kind) }
                }
            }
        }
        return Charts.faultTimeline(bars, nodes: nodes, end: end)
    }

    /// Writes every file of the run folder.
    public static func write(_ r: RunResult, to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func put(_ name: String, _ text: String) throws {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let summary = summaryRows(r)
        let timeseries = timeseriesRows(r)
        try put("summary.csv", csv(summaryColumns, summary))
        try put("timeseries.csv", csv(timeseriesColumns, timeseries))
        try put("latency.hlog", hlog(r))
        try put("latency.svg", latencySVG(r))
        try put("timeline.svg", timelineSVG(r))
        if let faults = faultsSVG(r) { try put("faults.svg", faults) }
        if !r.visibility.isEmpty {
            try put("visibility.csv", csv(["t_ms", "reads", "consistent", "p_consistent"], r.visibility.map {
                [String(format: "%.3f", Double($0.t) / 1e6), "\($0.reads)", "\($0.consistent)", String(format: "%.6f", $0.probability)]
            }))
            try put("visibility.svg", Charts.visibility([Series(name: "P(consistent)", points: r.visibility.map {
                (Double($0.t) / 1e6, $0.probability)
            })]))
        }
        try put("report.md", markdown(r, summary: summary))
        try put("run.json", json(r, summary: summary, timeseries: timeseries))
    }

    // MARK: - report.md

    /// What a run whose virtual time did not advance means, and what to change.
    public static let stoodStill = "Virtual time did not advance: every operation completed in zero time (no "
        + "client delay, and a coordinator that answered from its own replica), so no rate is defined. "
        + "Give a --delay-client above zero (or --service-time) for one."

    /// Why a run was cut short (``RunResult/virtualTimeStalled``), and what to change: one line.
    public static let stalled = "virtual time stopped advancing: operations complete in zero time (no client delay, "
        + "and a coordinator that answers from its own replica), so the run was cut short. Give a --delay-client above "
        + "zero (or --service-time), or count operations with --ops and --warmup 0s"

    /// Why a stalled run (``RunResult/virtualTimeStalled``) was cut short: the line above, or — when nothing completed
    /// in zero time and the clock still stood still — that it is a bug. (A Poisson open loop once spun in place
    /// and was told to add the --delay-client it had.)
    public static func stallLine(_ r: RunResult) -> String {
        guard r.virtualTimeSpun else { return stalled }
        return "virtual time stood still for 20,000,000 events, although no operation completed in zero time: a "
            + "simulator bug, so the run was cut short. Please report this command; its --seed \(r.config.seed) replays it"
    }

    /// Why the measured phase ended before its `--duration` or `--ops`, and what the run folder holds: one line.
    public static func stoppedLine(_ r: RunResult, _ stop: EarlyStop) -> String {
        let after = "after \(num(r.durationSeconds, 1)) s"
        switch stop {
        case .signal:
            return "\(stop.signalName!) ended the measured phase \(after); the run folder covers those seconds"
        case .checkMemory(let limit, let held):
            return "the consistency check held \(mib(held)), over --check-memory (\(mib(limit))), \(after) of the "
                + "measured phase: the run stopped there and its folder covers those seconds. Give "
                + "--consistency-check off for runs this long at this rate (or a larger --check-memory)"
        }
    }

    /// The check a run must pass, failed: acknowledged writes lost under `vv` with nodes that keep their data
    /// (SPEC.md: "Under vv this must be 0"). One line naming an example and how to replay it; nil if it held.
    public static func failedCheck(_ r: RunResult) -> String? {
        let c = r.config
        guard c.target == .cluster, c.core.versioning == .vv, c.faults.crashMode == .pause, r.lostWrites > 0
        else { return nil }
        let example = r.lostWriteSamples.first.map { " (e.g. write \($0.write) of key \($0.key))" } ?? ""
        let replay = c.clock == "virtual"
            ? "seed \(c.seed): the same command replays it exactly"
            : "seed \(c.seed); real time does not replay exactly, the same flags with --clock virtual may show it"
        return "check failed: \(r.lostWrites) acknowledged write(s) lost under vv\(example); \(replay)"
    }

    public static func markdown(_ r: RunResult, summary: [[String]]) -> String {
        let c = r.config
        let all = r.all
        var s = "# quorumbench run\n\n"
        let verdict: String
        if c.target == .noop {
            verdict = "Target `noop`: every request completes at once, so these figures are the load generator's own ceiling."
        } else if r.bound == .slots {
            verdict = "**Slot-bound**: all \(c.concurrency) slots (--concurrency) were busy, so requests waited for one "
                + "and the run achieved \(ops(r.achievedRate)) of \(ops(c.rate ?? 0)) ops/s. The figures below are what "
                + "the slots let through (and what waited in their queue), not what the system can deliver: give more --concurrency."
        } else if r.generatorBound {
            verdict = "**Generator-bound**: the load generator could not keep its schedule (schedule lag p99 "
                + "\(us(HistogramCounts(r.scheduleLag).value(atPercentile: 99))) µs, achieved \(ops(r.achievedRate)) of "
                + "\(ops(c.rate ?? 0)) ops/s). The throughput below is what the generator sent, not what the system can deliver."
        } else if r.timeStoodStill {
            verdict = "**" + stoodStill + "** The latencies are what the model gives (zero); throughput_ops_s is written as 0."
        } else {
            verdict = ""
        }
        let h = all.histogram
        let counts = HistogramCounts(h)
        func ms(_ q: Double) -> String { h.totalCount > 0 ? String(format: "%.3f ms", Double(counts.value(atPercentile: q)) / 1e6) : "–" }
        s += r.timeStoodStill ? "**no rate: virtual time did not advance**"
            : "**\(ops(r.rate(all.ok))) ops/s** over \(num(r.durationSeconds, 2)) s"
        s += " · p50 \(ms(50)) · p99 \(ms(99)) · p99.9 \(ms(99.9))"
        s += " · availability \(String(format: "%.4f%%", all.attempted > 0 ? 100 * Double(all.ok) / Double(all.attempted) : 100))"
        let readOK = r.totals[OpKind.read.rawValue].ok
        if c.consistencyUnchecked {
            s += " · stale reads and lost writes not checked (`--consistency-check off`)\n\n"
        } else {
            s += " · stale reads \(r.staleReads)" + (readOK > 0 ? String(format: " (%.4f%%)", 100 * Double(r.staleReads) / Double(readOK)) : "")
            s += " · lost writes \(r.lostWrites)\n\n"
        }
        if !verdict.isEmpty { s += verdict + "\n\n" }
        if let stop = r.stoppedEarly {
            s += "**Stopped early**: " + stoppedLine(r, stop) + ".\n\n"
        }

        s += "## Configuration\n\n| setting | value |\n|---|---|\n"
        for (k, v) in c.settings { s += "| `\(k)` | \(v) |\n" }
        s += "\n"

        s += "## Latency\n\nFrom the intended start of each request"
        s += c.rate == nil ? " (closed loop: when it was sent)" : " (open loop: its place on the schedule, however late it was sent)"
        s += ", in microseconds.\n\n"
        s += "| op | attempted | ok | failed | ops/s | mean | p50 | p90 | p99 | p99.9 | p99.99 | max |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        let col = Dictionary(uniqueKeysWithValues: summaryColumns.enumerated().map { ($1, $0) })
        for row in summary {
            let v = { (name: String) in row[col[name]!] }
            s += "| \(v("op")) | \(v("attempted")) | \(v("ok")) | \(v("failed")) | \(v("throughput_ops_s")) | \(v("mean_us")) | \(v("p50_us")) | \(v("p90_us")) | \(v("p99_us")) | \(v("p999_us")) | \(v("p9999_us")) | \(v("max_us")) |\n"
        }
        s += "\n![Latency by percentile](latency.svg)\n\n![Throughput and p99 over time](timeline.svg)\n\n"

        s += "## Availability\n\n| op | attempted | ok | failed | availability |\n|---|---:|---:|---:|---:|\n"
        for row in summary {
            s += "| \(row[col["op"]!]) | \(row[col["attempted"]!]) | \(row[col["ok"]!]) | \(row[col["failed"]!]) | \(row[col["availability"]!]) |\n"
        }
        s += "\nA request is ok when its coordinator had w acks (writes) or r responses (reads) within `--timeout` "
        s += "(\(Distribution.formatDuration(Double(c.core.timeout)))).\n\n"

        if !r.visibility.isEmpty {
            let v = r.visibility
            func settles(_ level: Double) -> String {
                settleText(v, level, first: "\(dur(v[0].t)) (from the first probe)")
            }
            s += "## Visibility (PBS)\n\n"
            s += "Each of \(r.totals[OpKind.insert.rawValue].attempted) trials wrote a new version of a fresh key; when the write committed, an independent "
            s += "quorum read (no read repair) was issued at each of \(v.count) offsets from \(dur(v[0].t)) to \(dur(v[v.count - 1].t)). "
            s += c.core.routing == .client ? "With `--routing client` this is the WARS model of PBS.\n\n" : "\n\n"
            s += "| P(consistent) at t = \(dur(v[0].t)) | P stays ≥ 0.99 from t = | P stays ≥ 0.999 from t = |\n|---:|---:|---:|\n"
            s += "| \(String(format: "%.4f", v[0].probability)) | \(settles(0.99)) | \(settles(0.999)) |\n\n"
            s += "![P(consistent read) after commit](visibility.svg)\n\nPer offset: `visibility.csv`.\n\n"
        }
        s += "## Staleness\n\n"
        if c.target == .noop {
            s += "Not measured against `noop`.\n\n"
        } else {
            if c.checksConsistency {
                s += "A read is stale when it misses a write acknowledged before it began (and everything that supersedes it); "
                s += "k counts the writes it missed. With w + r "
                s += c.core.w + c.core.r > c.core.n ? "> n (\(c.core.w) + \(c.core.r) > \(c.core.n)) quorums overlap.\n\n"
                    : "≤ n (\(c.core.w) + \(c.core.r) ≤ \(c.core.n)) quorums need not overlap.\n\n"
                s += "| ok reads | stale reads | stale fraction | mean k of stale reads | max k |\n|---:|---:|---:|---:|---:|\n"
                s += "| \(readOK) | \(r.staleReads) | \(String(format: "%.6f", readOK > 0 ? Double(r.staleReads) / Double(readOK) : 0)) | "
                s += "\(r.staleReads > 0 ? num(Double(r.staleK) / Double(r.staleReads), 2) : "–") | \(r.maxK) |\n\n"
            } else {
                s += "Stale reads and lost writes were not checked (`--consistency-check off`): the run kept no record of its "
                s += "writes, so summary.csv's `stale_reads`, `stale_fraction`, `max_k_stale` and `lost_writes` are 0 "
                s += "without meaning it.\n\n"
            }
            s += "Versions per key at the end (siblings under `vv`): mean \(num(r.meanSiblings, 2)), most \(r.maxSiblings).\n\n"
            if r.updates > 0 {
                s += "Updates and deletes without a context: \(r.blindUpdates) of \(r.updates) "
                s += "(\(String(format: "%.1f", 100 * Double(r.blindUpdates) / Double(r.updates)))%): "
                s += c.contextCache == 0 ? "`--context-cache 0` keeps none. "
                    : "their thread had not seen the key, or no longer held its context (`--context-cache` \(c.contextCache) keys a thread). "
                s += "Each is concurrent with every version of its key"
                s += c.core.versioning == .vv ? ", a sibling beside them until a write that saw them.\n\n" : ".\n\n"
            }
            if r.counters.rejected > 0 {
                s += "**\(r.counters.rejected) writes refused** (they count as failed): their key already held "
                s += "\(c.core.maxSiblings) versions that the write would not supersede (`--max-siblings`, Riak's `max_siblings`), "
                s += "and too few replicas took them (replicas refused \(r.counters.writesRejected) replica writes). Siblings pile up "
                s += "when clients write without the context of the key's latest versions: writes that time out, or many "
                s += "clients writing one key at once. Reading the key gives its context; the next write with it resolves them.\n\n"
            }
            if c.checksConsistency {
                s += "Lost writes (acknowledged, then neither returned nor superseded by what a read of all n replicas returns after the run): **\(r.lostWrites)**.\n\n"
            }
            if c.core.versioning == .lww && r.lostWrites > 0 {
                s += "Under `lww` concurrent writes to a key keep one survivor: a write that lost is never returned again, "
                s += "so every later read of its key misses it and counts as stale, with k growing as writes are lost. "
                s += "Here staleness mostly counts lost writes; compare with `--versioning vv`, which keeps them as siblings.\n\n"
            }
        }

        let k = r.counters
        s += r.faultTimeline.isEmpty ? "## Repair\n\n" : "## Faults and repair\n\n"
        if !r.faultTimeline.isEmpty {
            let f = c.faults
            var what: [String] = []
            if f.failureRate > 0 {
                what.append("each node down \(num(f.failureRate * 100, 1))% of the time (mean time to repair "
                            + "\(Distribution.formatDuration(Double(f.mttr))), \(f.crashMode.rawValue) mode)")
            }
            if !f.scripted.isEmpty { what.append("\(f.scripted.count) scripted fault(s)") }
            let up = r.intervals.filter { $0.index >= 0 }.map(\.nodesUp)
            s += "Faults: " + what.joined(separator: "; ") + "."
            if let e = r.faultExposure {
                s += " Over the measured phase nodes were down \(num(e.downFraction * 100, 1))% of the time, in "
                s += "\(e.failures) down period\(e.failures == 1 ? "" : "s")"
                if f.failureRate > 0 { s += " (\(num(r.expectedFailures, 1)) expected at this failure rate)" }
                s += "; nodes up per second: lowest \(up.min().map { num($0, 2) } ?? "–") of \(c.core.nodes)."
            }
            s += "\n\n![faults](faults.svg)\n\n"
            if RunReport.sawFewFailures(r) {
                s += "**Few failures:** a measured phase of \(num(r.durationSeconds, 2)) s can expect "
                s += "\(num(r.expectedFailures, 1)) down periods at this failure rate and mean time to repair, so the "
                s += "availability above depends on which failures happened to fall in it more than on the rate (the "
                s += "fraction of node-time down varies by " + RunReport.spreadText(r.expectedFailures, f.failureRate)
                s += " from seed to seed). Run longer (`--duration`, or more `--ops` with `--rate`), or repeat "
                s += "with other seeds (`sweep --repeat`).\n\n"
            }
            if f.failureRate > 0 && c.rate == nil { s += RunReport.closedLoopAvailability + "\n\n" }
        }
        s += "| counter | value |\n|---|---:|\n"
        s += "| read repairs | \(k.readRepairs) |\n"
        s += "| replica reads served / answered `same` (digest reads) | \(k.readsServed) / \(k.readsSame) |\n"
        s += "| writes sent to a fallback (sloppy quorum) | \(k.fallbackWrites) |\n"
        s += "| hints stored | \(k.hintsStored) |\n| hints delivered | \(k.hintsDelivered) |\n"
        s += "| hints dropped (over the bound) | \(k.hintsDropped) |\n"
        s += "| anti-entropy exchanges | \(k.aeExchanges) |\n| anti-entropy tree nodes sent | \(k.aeTreeNodesSent) |\n"
        s += "| anti-entropy keys sent | \(k.aeKeysSent) |\n| anti-entropy keys repaired | \(k.aeKeysRepaired) |\n"
        s += "| anti-entropy bytes sent | \(k.aeBytesSent) |\n"
        s += "| peers suspected / pings sent | \(k.suspicions) / \(k.pings) |\n"
        s += "| tombstones purged / late versions of purged keys dropped | \(k.tombstonesPurged) / \(k.lateVersionsDropped) |\n"
        s += "| messages dropped (`--drop`) | \(r.droppedMessages) |\n| messages lost to partitions | \(r.partitionedMessages) |\n"
        s += "| bad input ignored | \(k.ignored) |\n\n"
        if c.target == .cluster {
            s += "Counters include the quiescent end: after the measured phase the faults heal, and hinted handoff and "
            s += (c.core.antiEntropy ? "anti-entropy run" : "(anti-entropy is off) run") + " to completion "
            s += "(\(r.settleRounds) round(s)) before the lost-write check. After it, "
            s += r.divergentKeys == 0 && r.divergentTrees == 0 ? "every replica of every key holds the same versions"
                + (c.core.antiEntropy ? " and the replicas' Merkle roots are equal.\n\n" : ".\n\n")
                : "\(r.divergentKeys) key(s) still differ between replicas and \(r.divergentTrees) Merkle root(s) differ.\n\n"
        }

        if !r.threadShares.isEmpty {
            s += "## Schedule\n\nClosed loop: at most \(c.concurrency) requests in flight across \(c.threads) threads, which "
            s += "also run the cluster's nodes; each thread's share follows its spare time (a thread that hosts more nodes "
            s += "takes fewer). Shares at the end: " + r.threadShares.map(String.init).joined(separator: " / ")
            let moving = c.concurrency - r.threadShares.reduce(0, +)
            s += (moving > 0 ? " (and \(moving) being handed over)" : "") + ".\n\n"
        }
        if c.rate != nil {
            s += "## Schedule\n\nOpen loop at \(ops(c.rate!)) ops/s (\(c.arrival.rawValue) arrivals): achieved \(ops(r.achievedRate)) ops/s; "
            let lag = r.scheduleLag
            let ps = HistogramCounts(lag).values(atPercentiles: [50, 99])
            s += lag.totalCount > 0
                ? "schedule lag p50 \(us(ps[0])) µs, p99 \(us(ps[1])) µs, max \(us(lag.max)) µs.\n\n"
                : "no lag recorded.\n\n"
            if r.expiredRequests > 0 {
                let share = 100 * Double(r.expiredRequests) / Double(max(1, all.attempted))
                s += "**\(r.expiredRequests) requests (\(String(format: "%.2f%%", share)) of those attempted) failed unsent**: "
                s += "each waited --timeout (\(dur(c.core.timeout))) for a slot, all \(c.concurrency) (--concurrency) being "
                s += "busy, and counts in `failed`. A client's deadline runs out in its own queue too; sent late, the request "
                s += "would have measured the cluster as it was when it left instead of when it was meant to. To keep the "
                s += "client's queue out of the figures, give --concurrency at least rate × timeout "
                s += "(\(num(c.rate! * Double(c.core.timeout) / 1e9, 0)) here).\n\n"
            }
        }

        s += "## Memory\n\n| figure | value |\n|---|---:|\n"
        let p = r.pool
        s += "| pool acquires | \(p.acquires) |\n| pool cache hit rate | \(String(format: "%.4f", p.hitRate)) |\n"
        s += "| pool bytes in use | \(mib(p.bytesInUse)) |\n| pool bytes cached | \(mib(p.bytesCached)) |\n"
        s += "| jemalloc allocated | \(mib(p.jemallocAllocated)) |\n| jemalloc active | \(mib(p.jemallocActive)) |\n"
        s += "| jemalloc resident | \(mib(p.jemallocResident)) |\n| jemalloc mapped | \(mib(p.jemallocMapped)) |\n\n"
        s += "Files: `summary.csv`, `timeseries.csv`, `latency.hlog` (HdrHistogram interval log), `run.json`.\n"
        return s
    }

    static func dur(_ ns: UInt64) -> String { Distribution.formatDuration(Double(ns)) }

    /// The smallest probed t from which every later probe of `v` stays at or above `level` (nil: the last probe
    /// is below it).
    static func settleTime(_ v: [VisibilityPoint], _ level: Double) -> UInt64? {
        guard let last = v.lastIndex(where: { $0.probability < level }) else { return v.first?.t }
        return last + 1 < v.count ? v[last + 1].t : nil
    }

    /// ``settleTime(_:_:)`` in words; `first` is what a curve at or above the level from its first probe gets.
    static func settleText(_ v: [VisibilityPoint], _ level: Double, first: String) -> String {
        guard let t = settleTime(v, level) else { return "not reached by \(dur(v[v.count - 1].t))" }
        return t == v[0].t ? first : dur(t)
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

    // MARK: - run.json

    public static func json(_ r: RunResult, summary: [[String]], timeseries: [[String]]) -> String {
        var doc: [String: Any] = [:]
        doc["configuration"] = Dictionary(uniqueKeysWithValues: r.config.settings.map { ($0.0, $0.1) })
        doc["summary"] = summary.map { row in
            Dictionary(uniqueKeysWithValues: zip(summaryColumns, row).map { k, v -> (String, Any) in
                (k, Double(v).map { $0 as Any } ?? v)
            })
        }
        doc["timeseries"] = timeseries.map { row in
            Dictionary(uniqueKeysWithValues: zip(timeseriesColumns, row).map { k, v -> (String, Any) in
                (k, Double(v).map { $0 as Any } ?? v)
            })
        }
        var schedule: [String: Any] = ["loop": r.config.rate == nil ? "closed" : "open"]
        if !r.threadShares.isEmpty { schedule["thread_shares"] = r.threadShares }
        if let rate = r.config.rate {
            schedule["target_rate"] = rate
            schedule["achieved_rate"] = r.achievedRate
            schedule["generator_bound"] = r.generatorBound
            schedule["expired_requests"] = r.expiredRequests
            if r.scheduleLag.totalCount > 0 {
                let ps = HistogramCounts(r.scheduleLag).values(atPercentiles: [50, 99])
                schedule["lag_p50_us"] = Double(ps[0]) / 1000
                schedule["lag_p99_us"] = Double(ps[1]) / 1000
                schedule["lag_max_us"] = Double(r.scheduleLag.max) / 1000
            }
        }
        doc["schedule"] = schedule
        doc["verdict"] = r.config.target == .noop ? "generator ceiling (noop target)"
            : (r.bound?.rawValue ?? "system-measured")
        let checked = r.config.checksConsistency
        func measured(_ v: Any) -> Any { checked ? v : Int?.none as Any }  // null: not measured
        doc["staleness"] = ["checked": checked, "stale_reads": measured(r.staleReads),
                            "mean_k": measured(r.staleReads > 0 ? Double(r.staleK) / Double(r.staleReads) : 0),
                            "max_k": measured(r.maxK), "lost_writes": measured(r.lostWrites), "updates": r.updates, "blind_updates": r.blindUpdates, "max_siblings": r.maxSiblings, "mean_siblings": r.meanSiblings,
                            "lost_write_samples": r.lostWriteSamples.map { ["write": $0.write, "key": $0.key] }] as [String: Any]
        let c = r.counters
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // Decoded as Swift integers: Foundation's JSON reader gives NSNumbers, and an NSNumber of 0 or 1 casts to
        // `Bool` as readily as to `Int` (run.json once said `"failed" : false`).
        var counters: [String: Any] = (try? encoder.encode(c)).flatMap { try? JSONDecoder().decode([String: Int].self, from: $0) } ?? [:]
        counters["dropped_messages"] = r.droppedMessages
        counters["partitioned_messages"] = r.partitionedMessages
        counters["settle_rounds"] = r.settleRounds
        counters["divergent_keys_after_repair"] = r.divergentKeys
        counters["divergent_merkle_roots_after_repair"] = r.divergentTrees
        doc["counters"] = counters
        if !r.visibility.isEmpty {
            doc["visibility"] = r.visibility.map { ["t_ms": Double($0.t) / 1e6, "reads": $0.reads, "consistent": $0.consistent,
                                                    "p_consistent": $0.probability] as [String: Any] }
        }
        if !r.faultTimeline.isEmpty {
            doc["faults"] = r.faultTimeline.map { entry -> [String: Any] in
                ["at_s": Double(entry.at) / 1e9,
                 "down": entry.conditions.indices.filter { entry.conditions[$0].down }.map { $0 + 1 },
                 "stalled": entry.conditions.indices.filter { entry.conditions[$0].stalled }.map { $0 + 1 },
                 "slow": entry.conditions.indices.filter { entry.conditions[$0].slow > 0 }.map { $0 + 1 },
                 "partition_groups": entry.conditions.map(\.group)]
            }
        }
        let p = r.pool
        doc["memory"] = ["pool_acquires": p.acquires, "pool_releases": p.releases, "pool_cache_hits": p.cacheHits,
                         "pool_bytes_in_use": p.bytesInUse, "pool_bytes_cached": p.bytesCached,
                         "jemalloc_allocated": p.jemallocAllocated, "jemalloc_active": p.jemallocActive,
                         "jemalloc_resident": p.jemallocResident, "jemalloc_mapped": p.jemallocMapped]
        doc["duration_s"] = r.durationSeconds
        if let stop = r.stoppedEarly {
            switch stop {
            case .signal: doc["stopped_early"] = ["reason": stop.signalName!] as [String: Any]
            case .checkMemory(let limit, let held):
                doc["stopped_early"] = ["reason": "check-memory", "limit_bytes": limit, "held_bytes": held] as [String: Any]
            }
        }
        doc["clock"] = r.config.clock
        if r.config.clock == "virtual" { doc["simulated_events"] = r.simulatedEvents }
        doc["files"] = ["summary.csv", "timeseries.csv", "latency.hlog", "report.md", "latency.svg", "timeline.svg"] + (r.faultTimeline.isEmpty ? [] : ["faults.svg"])
            + (r.visibility.isEmpty ? [] : ["visibility.csv", "visibility.svg"])
        return JSONText.document(doc)
    }
}
