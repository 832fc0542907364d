import Foundation
import Histogram
import LoadGenerator
import ReplicationCore
import ClusterRuntime

/// One run of a sweep: its grid values, its repeat, and what it measured.
public struct SweepRun {
    public var point: Int
    public var label: String
    public var repeatIndex: Int
    public var result: RunResult
    public init(point: Int, label: String, repeatIndex: Int, result: RunResult) {
        self.point = point
        self.label = label
        self.repeatIndex = repeatIndex
        self.result = result
    }
}

/// The sweep folder: sweep.csv (every summary row of every run, with point and repeat), sweep.md (a trade-off
/// table per failure rate) and the availability, latency and staleness charts.
public enum SweepReport {
    /// The figures of one point, averaged over its repeats.
    public struct Figures {
        public var availability = 0.0
        public var writeAvailability = 0.0
        public var readAvailability = 0.0
        public var readP99 = 0.0  // ms
        public var writeP99 = 0.0  // ms
        public var staleFraction = 0.0
        public var lostWrites = 0.0
        /// The fraction of node-time down in the measured phase (0 without faults).
        public var downFraction = 0.0
    }

    static let writeKinds: [OpKind] = [.update, .insert, .rmw, .delete]

    /// One run's figures.
    public static func figures(_ r: RunResult) -> Figures {
        var f = Figures()
        let all = r.all
        f.availability = all.attempted > 0 ? Double(all.ok) / Double(all.attempted) : 1
        var write = KindTotals()
        for k in writeKinds {
            let t = r.totals[k.rawValue]
            write.ok += t.ok
            write.failed += t.failed
            write.histogram.add(t.histogram)
        }
        let read = r.totals[OpKind.read.rawValue]
        f.writeAvailability = write.attempted > 0 ? Double(write.ok) / Double(write.attempted) : 1
        f.readAvailability = read.attempted > 0 ? Double(read.ok) / Double(read.attempted) : 1
        f.readP99 = Double(HistogramCounts(read.histogram).value(atPercentile: 99)) / 1e6
        f.writeP99 = Double(HistogramCounts(write.histogram).value(atPercentile: 99)) / 1e6
        f.staleFraction = read.ok > 0 ? Double(r.staleReads) / Double(read.ok) : 0
        f.lostWrites = Double(r.lostWrites)
        f.downFraction = r.faultExposure?.downFraction ?? 0
        return f
    }

    /// A point of the sweep: its configuration, the mean of each figure over its repeats and, with two repeats or
    /// more, the standard error of that mean (the repeats' sample standard deviation / √repeats).
    struct Point {
        var point: Int
        var config: RunConfig
        var figures: Figures
        var standardError: Figures?
        /// Its runs' faults: whether any had some, and the down periods random failures would give their measured
        /// phases together on average.
        var faulted = false
        var expectedFailures = 0.0
        /// `--workload visibility`: the repeats' probe reads pooled per offset (empty otherwise).
        var visibility: [VisibilityPoint] = []
    }

    /// The probe reads of `runs` pooled per offset (every run of a point probes the same offsets).
    static func pooledVisibility(_ runs: [SweepRun]) -> [VisibilityPoint] {
        guard var pooled = runs.first?.result.visibility else { return [] }
        for run in runs.dropFirst() where run.result.visibility.count == pooled.count {
            for i in pooled.indices {
                pooled[i].reads += run.result.visibility[i].reads
                pooled[i].consistent += run.result.visibility[i].consistent
            }
        }
        return pooled
    }

    static var allFigures: [WritableKeyPath<Figures, Double>] {
        [\.availability, \.writeAvailability, \.readAvailability, \.readP99, \.writeP99, \.staleFraction, \.lostWrites,
         \.downFraction]
    }

    /// Each point's figures over its repeats. The repeats differ only in their seed, so their spread is the
    /// sampling error of the figure: within one run the failures and the hot keys make samples far from
    /// independent, and a binomial error from one run's counts would understate it.
    static func averaged(_ runs: [SweepRun]) -> [Point] {
        var byPoint: [Int: [SweepRun]] = [:]
        for r in runs { byPoint[r.point, default: []].append(r) }
        return byPoint.keys.sorted().map { p in
            let rs = byPoint[p]!
            let fs = rs.map { figures($0.result) }
            let k = Double(fs.count)
            var mean = Figures(), error = Figures()
            for key in allFigures {
                let m = fs.reduce(0) { $0 + $1[keyPath: key] } / k
                mean[keyPath: key] = m
                if fs.count > 1 {
                    let variance = fs.reduce(0) { $0 + ($1[keyPath: key] - m) * ($1[keyPath: key] - m) } / (k - 1)
                    error[keyPath: key] = (variance / k).squareRoot()
                }
            }
            return Point(point: p, config: rs[0].result.config, figures: mean,
                         standardError: fs.count > 1 ? error : nil,
                         faulted: rs.contains { $0.result.faultExposure != nil },
                         expectedFailures: rs.reduce(0) { $0 + $1.result.expectedFailures },
                         visibility: pooledVisibility(rs))
        }
    }

    /// The configuration of a point, without its failure rate: the name of its line in the charts.
    static func lineName(_ c: RunConfig, varying: Set<String>) -> String {
        var parts: [String] = []
        if varying.contains("nodes") { parts.append("M=\(c.core.nodes)") }
        if varying.contains("n") { parts.append("n=\(c.core.n)") }
        parts.append("w=\(c.core.w)")
        parts.append("r=\(c.core.r)")
        if varying.contains("quorum") { parts.append(c.core.quorum.rawValue) }
        if varying.contains("drop") { parts.append("drop=\(String(format: "%g", c.drop))") }
        return parts.joined(separator: " ")
    }

    /// `note`: a paragraph sweep.md gives first (an interrupted sweep says what its tables hold).
    public static func write(_ runs: [SweepRun], varying: Set<String>, command: String, note: String? = nil,
                             to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func put(_ name: String, _ text: String) throws {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        var rows: [[String]] = []
        for r in runs {
            for row in RunReport.summaryRows(r.result) { rows.append(row + ["\(r.point)", "\(r.repeatIndex)"]) }
        }
        try put("sweep.csv", RunReport.csv(RunReport.summaryColumns + ["point", "repeat"], rows))
        let points = averaged(runs)
        try put("sweep.md", markdown(points, runs: runs, varying: varying, command: command, note: note))
        // Charts: a line per configuration across failure rates. Write figures depend on w (not r) and read figures
        // on r, so those charts have a line per w (or r), averaged over the others; strict quorums dashed.
        let rates = Set(points.map { $0.config.failureRate }).sorted()
        func series(_ name: (RunConfig) -> String, _ value: (Figures) -> Double) -> [Series] {
            var order: [String] = []
            var sums: [String: [Double: (Double, Int)]] = [:]
            var strict: [String: Bool] = [:]
            for p in points {
                let key = name(p.config)
                if sums[key] == nil { order.append(key) }
                strict[key] = p.config.core.quorum == .strict
                let old = sums[key, default: [:]][p.config.failureRate] ?? (0, 0)
                sums[key, default: [:]][p.config.failureRate] = (old.0 + value(p.figures), old.1 + 1)
            }
            return order.map { key in
                Series(name: key, points: sums[key]!.keys.sorted().map { r in (r, sums[key]![r]!.0 / Double(sums[key]![r]!.1)) },
                       dashed: strict[key] ?? false)
            }
        }
        func withQuorum(_ c: RunConfig, _ s: String) -> String {
            var parts: [String] = []
            if varying.contains("nodes") { parts.append("M=\(c.core.nodes)") }
            if varying.contains("n") { parts.append("n=\(c.core.n)") }
            parts.append(s)
            if varying.contains("quorum") { parts.append(c.core.quorum.rawValue) }
            if varying.contains("drop") { parts.append("drop=\(String(format: "%g", c.drop))") }
            return parts.joined(separator: " ")
        }
        let byW = { (c: RunConfig) in withQuorum(c, "w=\(c.core.w)") }
        let byR = { (c: RunConfig) in withQuorum(c, "r=\(c.core.r)") }
        let byBoth = { (c: RunConfig) in lineName(c, varying: varying) }
        let hi = max(rates.last ?? 0, 0.01)
        let ticks = rates.map { ($0, String(format: "%g", $0)) }
        func chart(_ title: String, _ yLabel: String, _ s: [Series], y0: Double = 0) -> String {
            Charts.panel(x0: 0, y0: y0, width: 760, height: 420, title: title, xLabel: "Failure rate (fraction of time each node is down)",
                         yLabel: yLabel, series: s, xRange: 0...hi * 1.05, xTicks: ticks, xLog: false)
        }
        try put("availability.svg", Charts.document(width: 760, height: 840, body:
            chart("Write availability (by w)", "ok / attempted (writes)", series(byW) { $0.writeAvailability })
            + chart("Read availability (by r)", "ok / attempted (reads)", series(byR) { $0.readAvailability }, y0: 420)))
        try put("latency.svg", Charts.document(width: 760, height: 840, body:
            chart("p99 write latency (by w)", "p99 write latency (ms)", series(byW) { $0.writeP99 })
            + chart("p99 read latency (by r)", "p99 read latency (ms)", series(byR) { $0.readP99 }, y0: 420)))
        // PBS: P(consistent | t) per point, a line per configuration and failure rate.
        if points.contains(where: { !$0.visibility.isEmpty }) {
            let several = Set(points.map(\.config.failureRate)).count > 1
            try put("visibility.svg", Charts.visibility(points.filter { !$0.visibility.isEmpty }.map { p in
                Series(name: lineName(p.config, varying: varying)
                           + (several ? " f=\(String(format: "%g", p.config.failureRate))" : ""),
                       points: p.visibility.map { (Double($0.t) / 1e6, $0.probability) },
                       dashed: p.config.core.quorum == .strict)
            }))
        }
        let unchecked = points.contains { $0.config.consistencyUnchecked }
        try put("staleness.svg", Charts.document(width: 760, height: 420, body:
            chart(unchecked ? "Stale reads: not checked (--consistency-check off)" : "Stale reads (by w and r)",
                  "stale reads / ok reads", unchecked ? [] : series(byBoth) { $0.staleFraction })))
    }

    /// Whether the runs of point `p` ran with random failures over measured phases too short to expect
    /// ``RunReport/fewFailures`` of them together.
    static func sawFewFailures(_ p: Point) -> Bool {
        p.config.failureRate > 0 && p.expectedFailures < RunReport.fewFailures
    }

    /// How many points of `runs` ``sawFewFailures(_:)``.
    public static func fewFailurePoints(_ runs: [SweepRun]) -> Int { averaged(runs).filter(sawFewFailures).count }

    /// The labels of the points some run of which took no virtual time (``RunResult/timeStoodStill``), sorted.
    public static func zeroTimePoints(_ runs: [SweepRun]) -> [String] {
        Set(runs.filter(\.result.timeStoodStill).map(\.label)).sorted()
    }

    static func markdown(_ points: [Point], runs: [SweepRun],
                         varying: Set<String>, command: String, note: String? = nil) -> String {
        var s = "# quorumbench sweep\n\n"
        s += "Command: `\(command)`\n\n"
        if let note { s += note + "\n\n" }
        let first = points.first?.config
        if let c = first {
            s += "\(points.count) points, \(runs.count) runs (\(runs.count / max(points.count, 1)) per point, seeds from \(c.seed)); "
            s += "clock \(c.clock), workload \(c.workload.rawValue), \(c.keys) keys, "
            s += c.rate.map { "open loop at \(String(format: "%g", $0)) ops/s" } ?? "closed loop, \(c.concurrency) in flight"
            s += ", routing \(c.core.routing.rawValue), \(c.ops.map { "\($0) operations" } ?? "\(Distribution.formatDuration(Double(c.duration)))") per run.\n\n"
        }
        s += "Each table is one failure rate. **overlap** marks the choices with w + r > n (every read quorum meets every "
        s += "write quorum); the others trade staleness for latency and availability. "
        if points.contains(where: { $0.standardError != nil }) {
            s += "Figures are means over the repeats ± their standard error (the repeats' standard deviation / √repeats): "
            s += "a difference of less than about two of them between two choices is not one this sweep can tell. "
        } else {
            s += "One run per point, so no figure has an error bar: `--repeat K` (K ≥ 2) runs each point with K seeds "
            s += "and gives each figure its standard error. "
        }
        s += "Every run's folder is under `points/`.\n\n"
        if first?.rate == nil && points.contains(where: { $0.config.failureRate > 0 }) {
            s += RunReport.closedLoopAvailability + "\n\n"
        }
        if points.contains(where: { $0.config.consistencyUnchecked }) {
            s += "**Not checked:** `--consistency-check off`, so no stale fraction and no lost writes (–); in sweep.csv "
            s += "their columns are 0 without meaning it.\n\n"
        }
        let still = zeroTimePoints(runs)
        if !still.isEmpty {
            s += "**Zero time:** in " + still.map { "`\($0)`" }.joined(separator: ", ")
            s += " — " + RunReport.stoodStill + " Their p99s are 0 because the model makes them free.\n\n"
        }
        for rate in Set(points.map { $0.config.failureRate }).sorted() {
            let table = points.filter { $0.config.failureRate == rate }
            // With faults, what the runs' measured phases saw of them: a short phase can see none of a 5% rate.
            let faulted = table.contains(where: \.faulted)
            let thin = table.filter(sawFewFailures)
            s += "## Failure rate \(String(format: "%g", rate))\n\n"
            if faulted {
                s += "**nodes down**: the fraction of node-time the nodes were down in the measured phase"
                s += rate > 0 ? ", against the \(String(format: "%g", rate * 100))% asked.\n\n" : ".\n\n"
            }
            let probed = table.contains { !$0.visibility.isEmpty }
            s += "| configuration | overlap | availability | write avail. | read avail. | p99 write (ms) | p99 read (ms) | stale fraction | lost writes |"
            s += (faulted ? " nodes down |" : "") + (probed ? " P(consistent) at first t | P ≥ 0.99 from t | P ≥ 0.999 from t |" : "")
            s += "\n|---|:-:|---:|---:|---:|---:|---:|---:|---:|" + (faulted ? "---:|" : "") + (probed ? "---:|---:|---:|" : "") + "\n"
            for p in table {
                let c = p.config
                func cell(_ key: KeyPath<Figures, Double>, _ format: String, scale: Double = 1) -> String {
                    let m = String(format: format, p.figures[keyPath: key] * scale)
                    return p.standardError.map { "\(m) ± \(String(format: format, $0[keyPath: key] * scale))" } ?? m
                }
                let marked = thin.contains { $0.point == p.point }
                let name = lineName(c, varying: varying.union(["n"])) + (marked ? " †" : "")
                s += "| \(name) | \(c.core.w + c.core.r > c.core.n ? "✓" : "") | "
                var cells = [cell(\.availability, "%.5f"), cell(\.writeAvailability, "%.5f"), cell(\.readAvailability, "%.5f"),
                             cell(\.writeP99, "%.3f"), cell(\.readP99, "%.3f"),
                             c.consistencyUnchecked ? "–" : cell(\.staleFraction, "%.5f"),
                             c.consistencyUnchecked ? "–" : cell(\.lostWrites, "%g")]
                if faulted { cells.append(cell(\.downFraction, "%.2f%%", scale: 100)) }
                if probed {
                    let v = p.visibility
                    cells += v.isEmpty ? ["–", "–", "–"]
                        : ["\(String(format: "%.4f", v[0].probability)) (t = \(RunReport.dur(v[0].t)))",
                           RunReport.settleText(v, 0.99, first: RunReport.dur(v[0].t)),
                           RunReport.settleText(v, 0.999, first: RunReport.dur(v[0].t))]
                }
                s += cells.joined(separator: " | ") + " |\n"
            }
            s += "\n"
            if !thin.isEmpty {
                let fewest = thin.map(\.expectedFailures).min()!
                s += "† Few failures: the measured phases of a point marked could expect fewer than "
                s += "\(Int(RunReport.fewFailures)) down periods in all (as few as \(String(format: "%.1f", fewest))), "
                s += "so its availability depends on which failures happened to fall in them more than on the rate "
                s += "(its nodes-down fraction varies by " + RunReport.spreadText(fewest, rate) + " from seed to seed). "
                s += "Run longer (`--duration`, or more `--ops` with `--rate`) or `--repeat` more seeds.\n\n"
            }
        }
        s += "![availability](availability.svg)\n\n![latency](latency.svg)\n\n![staleness](staleness.svg)\n"
        if points.contains(where: { !$0.visibility.isEmpty }) {
            s += "\n## Visibility (PBS)\n\n"
            s += "Each run wrote fresh keys and read each write back with independent quorum reads at fixed offsets "
            s += "after it committed (`--workload visibility`); a point's repeats are pooled per offset. **P ≥ 0.99 "
            s += "from t**: the first probed t from which every later probe stays at or above 0.99.\n\n"
            s += "![P(consistent read) after commit](visibility.svg)\n"
        }
        return s
    }
}
