import ArgumentParser
import Foundation
import LoadGenerator
import Reports
import Synchronization
import SyncPrimitives

#if canImport(Glibc)
import Glibc
#endif

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of runs over n, w, r, failure rate, quorum, drop and nodes; write a sweep folder.",
        discussion: """
            Takes every run flag; --n --w --r --failure-rate --quorum --drop --nodes also take comma lists, and the \
            grid is their product (points with w > n, r > n or n > nodes are skipped, and said so). --repeat K runs \
            each point K times with seeds seed…seed+K−1. Writes sweep.csv, sweep.md, availability.svg, latency.svg, \
            staleness.svg and points/<label>/ (a run folder each) into --out (default reports/sweep). Ctrl-C \
            (SIGINT) or SIGTERM: no new point starts, running points end their measured phase, the folder holds \
            the runs that finished, and the sweep exits 130 (143); a second signal quits at once.
            Example: quorumbench sweep --clock virtual --delay "exp(mean=1ms)" --w 1,2,3 --r 1,2,3 \
            --failure-rate 0,0.05,0.2 --ops 100000
            """
    )

    @OptionGroup var options: RunOptions
    @Option(name: .customLong("repeat"), help: "Runs per point (seeds seed, seed+1, …); with 2 or more, sweep.md gives each figure ± its standard error.") var repeats: String?

    static let gridKeys = ["nodes", "n", "w", "r", "quorum", "failure-rate", "drop"]

    func run() throws {
        var base = try options.settings()
        let outPath = base.string("out") ?? "reports/sweep"
        let repeatCount = try repeats.map { s -> Int in
            guard let k = Int(s), k >= 1, k <= 1000 else { throw UsageError("--repeat must be a whole number from 1 to 1000 (got '\(s)')") }
            return k
        } ?? 1
        let quiet = try base.onOff("quiet", default: false)
        // The grid: every key's comma list, in a fixed order.
        var lists: [(String, [String])] = []
        var varying = Set<String>()
        for key in SweepCommand.gridKeys {
            guard let v = base.values[key] else { continue }
            let items = v.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !items.isEmpty, !items.contains("") else { throw UsageError("--\(key): empty item in the list '\(v)'") }
            // Twice the same value: two points of one name, run at once into one folder.
            if let twice = items.indices.first(where: { items[..<$0].contains(items[$0]) }) {
                throw UsageError("--\(key) lists '\(items[twice])' twice in '\(v)'")
            }
            lists.append((key, items))
            if items.count > 1 { varying.insert(key) }
        }
        for (key, _) in lists { base.values[key] = nil }
        var combos: [[(String, String)]] = [[]]
        for (key, items) in lists { combos = combos.flatMap { c in items.map { c + [(key, $0)] } } }
        // Check every point before running any: a bad value is a usage error, an impossible point is skipped.
        var points: [(label: String, settings: Settings, config: RunConfig)] = []
        let seed = UInt64(try base.int("seed", default: 1, min: 0))
        var skipped: [String] = []
        for combo in combos {
            var s = base
            for (k, v) in combo { s.values[k] = v }
            let n = Int(s.values["n"] ?? "3") ?? 3, w = Int(s.values["w"] ?? "2") ?? 2, r = Int(s.values["r"] ?? "2") ?? 2
            let nodes = Int(s.values["nodes"] ?? "5") ?? 5
            if w > n || r > n || n > nodes {
                let why = w > n ? "w > n" : r > n ? "r > n" : "n > nodes"
                skipped.append("quorumbench: skipping " + combo.map { "\($0.0)=\($0.1)" }.joined(separator: " ") + " (\(why))\n")
                continue
            }
            let config = try s.runConfig()
            let label = combo.map { "\($0.0 == "failure-rate" ? "f" : $0.0)\($0.1)" }.joined(separator: "-")
            points.append((label.isEmpty ? "point" : label.replacingOccurrences(of: "/", with: "_"), s, config))
        }
        guard !points.isEmpty else { throw UsageError("every point of the grid was skipped (w > n, r > n or n > nodes): nothing to run") }
        for line in skipped { FileHandle.standardError.write(line) }
        let folder = URL(fileURLWithPath: outPath)
        try RunCommand.checkWritable(folder)
        struct Job { var point: Int; var repeatIndex: Int }
        let jobs = points.indices.flatMap { p in (0..<repeatCount).map { Job(point: p, repeatIndex: $0) } }
        let results = Locked<[Int: RunResult]>([:])
        let failure = Locked<String?>(nil)
        let finished = Locked(0)
        let tty = isatty(STDERR_FILENO) != 0
        let start = Date()
        let configs = points.map(\.config), labels = points.map(\.label)
        if let warning = configs.lazy.compactMap(\.timeoutWarning).first {
            FileHandle.standardError.write("quorumbench: warning: \(warning)\n")
        }
        // Virtual-time runs are independent and each deterministic for its seed: as many at once as there are
        // cores. Real-time runs measure the machine: one at a time, or each point's throughput and latency would
        // include another cluster competing for the same cores.
        let parallel = configs.allSatisfy { $0.clock == "virtual" } ? ProcessInfo.processInfo.activeProcessorCount : 1
        let shareCheckMemory = base.values["check-memory"] == nil && parallel > 1
        // Ctrl-C (or SIGTERM): no new point starts, the running ones end their measured phase (as a run does), and
        // the sweep folder holds the runs that finished; exit 128 + the signal. A second one quits at once.
        let interruption = Atomic<Int32>(0)
        let running = Locked<[Int: StopRequest]>([:])
        let signals = RunCommand.onSignals { number in
            guard interruption.compareExchange(expected: 0, desired: number, ordering: .acquiringAndReleasing).exchanged
            else { return }
            signal(number, SIG_DFL)
            FileHandle.standardError.write("\nquorumbench: \(EarlyStop.signal(number).signalName!): no new point starts; "
                + "running points end their measured phase, and the sweep folder will hold the runs that finished "
                + "(again to quit at once)\n")
            for stop in running.withLock({ Array($0.values) }) { stop.request(.signal(number)) }
        }
        defer { RunCommand.restoreSignals(signals) }
        DispatchQueue.concurrentPerform(iterations: parallel) { worker in
            var j = worker
            while j < jobs.count, failure.withLock({ $0 }) == nil, interruption.load(ordering: .acquiring) == 0 {
                let index = j, job = jobs[j]
                j += parallel
                var config = configs[job.point]
                config.seed = seed + UInt64(job.repeatIndex)
                config.core.seed = config.seed
                config.settings = config.settings.map { $0.0 == "seed" ? ($0.0, "\(config.seed)") : $0 }
                // Points running at once share the machine: by default each gets its part of the check's memory.
                if shareCheckMemory && config.checkMemory != Int.max {
                    config.checkMemory /= parallel
                    let shown = Settings.size(config.checkMemory) + " (a share: \(parallel) points run at once)"
                    config.settings = config.settings.map { $0.0 == "check-memory" ? ($0.0, shown) : $0 }
                }
                let runner = Runner(config: config)
                running.withLock { $0[index] = runner.stop }
                let result = runner.run()
                running.withLock { $0[index] = nil }
                let name = repeatCount > 1 ? "\(labels[job.point])-seed\(config.seed)" : labels[job.point]
                if result.virtualTimeStalled {
                    failure.withLock { $0 = "\(name): \(RunReport.stallLine(result))" }
                    return
                }
                do {
                    try RunReport.write(result, to: folder.appendingPathComponent("points").appendingPathComponent(name))
                } catch {
                    failure.withLock { $0 = "cannot write \(name): \(error.localizedDescription)" }
                    return
                }
                // A run a signal cut short keeps its folder (which says so), not its place in the tables.
                if case .signal = result.stoppedEarly { return }
                results.withLock { $0[index] = result }
                let done = finished.withLock { n in n += 1; return n }
                if !quiet {
                    let line = String(format: "[%d/%d points, %.0fs] %@", done, jobs.count, Date().timeIntervalSince(start), name)
                    FileHandle.standardError.write(tty ? "\r\u{1B}[K" + line : line + "\n")
                }
            }
        }
        if let message = failure.withLock({ $0 }) {
            FileHandle.standardError.write((tty ? "\n" : "") + "quorumbench: \(message)\n")
            throw ExitCode(1)
        }
        let all = results.withLock { $0 }
        let runs = jobs.indices.compactMap { i in
            all[i].map { SweepRun(point: jobs[i].point, label: points[jobs[i].point].label, repeatIndex: jobs[i].repeatIndex, result: $0) }
        }
        if !quiet && isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write("\r\u{1B}[K") }
        let signalled = interruption.load(ordering: .acquiring)
        var note: String?
        if signalled != 0 {
            let name = EarlyStop.signal(signalled).signalName!
            guard !runs.isEmpty else {
                FileHandle.standardError.write("quorumbench: \(name): no run of the sweep finished; no sweep folder written\n")
                throw ExitCode(128 + signalled)
            }
            note = "**Interrupted** (\(name)) after \(runs.count) of \(jobs.count) runs: the tables and charts hold the "
                + "runs that finished. A run the signal cut short has its folder under `points/` (its report says "
                + "so), and no row here."
        }
        let command = "quorumbench sweep " + CommandLine.arguments.dropFirst(2).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        do {
            try SweepReport.write(runs, varying: varying, command: command, note: note, to: folder)
        } catch {
            FileHandle.standardError.write("quorumbench: cannot write the sweep folder \(outPath): \(error.localizedDescription)\n")
            throw ExitCode(1)
        }
        // A point cut short (its check's memory) measured less than the others: the sweep does not compare it.
        let failed = runs.compactMap { run in RunReport.failedCheck(run.result).map { "\(run.label): \($0)" } }
            + runs.compactMap { run in run.result.stoppedEarly.map { "\(run.label): " + RunReport.stoppedLine(run.result, $0) } }
        for line in failed { FileHandle.standardError.write("quorumbench: \(line)\n") }
        let still = SweepReport.zeroTimePoints(runs)
        if !still.isEmpty {
            FileHandle.standardError.write("quorumbench: warning: in \(still.joined(separator: ", ")): \(RunReport.stoodStill)\n")
        }
        let few = SweepReport.fewFailurePoints(runs)
        if few > 0 {
            FileHandle.standardError.write("quorumbench: warning: few failures: \(few) of \(points.count) points' runs "
                + "could expect fewer than \(Int(RunReport.fewFailures)) down periods in their measured phases; their "
                + "availability says little about the failure rate (marked † in sweep.md)\n")
        }
        print("sweep: \(points.count) points × \(repeatCount) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s — \(outPath)/sweep.md")
        if !failed.isEmpty { throw ExitCode(1) }
        if signalled != 0 {
            FileHandle.standardError.write("quorumbench: \(EarlyStop.signal(signalled).signalName!) interrupted the sweep "
                + "after \(runs.count) of \(jobs.count) runs; sweep.md says what it holds\n")
            throw ExitCode(128 + signalled)
        }
    }
}
