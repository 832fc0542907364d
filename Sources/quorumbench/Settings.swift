import BufferPool
import ClusterRuntime
import Foundation
import LoadGenerator
import ReplicationCore
import Reports
import Yams

/// `--clock`.
enum Clock: String, CaseIterable { case real, virtual }

/// A usage error: one line naming what is wrong; the command exits 64.
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The `run` settings by their SPEC names (the long flags without dashes, which are also the scenario keys),
/// merged from the embedded defaults, a scenario file and the command line, then turned into a `RunConfig`.
struct Settings {
    static let keys: [String] = [
        "scenario", "target", "transport", "clock", "nodes", "n", "w", "r", "quorum", "routing", "vnodes", "versioning",
        "max-siblings", "read-repair", "hinted-handoff", "anti-entropy", "ae-interval", "timeout", "workload", "read-proportion",
        "update-proportion", "insert-proportion", "rmw-proportion", "delete-proportion", "keys", "value-size",
        "distribution", "threads", "concurrency", "context-cache", "consistency-check", "check-memory", "rate", "arrival", "duration", "warmup", "ops", "delay",
        "delay-client", "delay-write", "delay-write-ack", "delay-read", "delay-read-response", "drop", "failure-rate",
        "mttr", "service-time", "crash-mode", "probe-times", "seed", "out", "quiet",
    ]

    var values: [String: String] = [:]
    /// The scenario's `faults:` list, as read (checked by ``runConfig()``), and the file it came from.
    var faults: [Any] = []
    var faultsSource = ""

    /// Reads a YAML scenario: a mapping of the same keys as the long flags.
    mutating func loadScenario(_ path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError("cannot read scenario file '\(path)'")
        }
        let node: Any?
        do {
            node = try Yams.load(yaml: text)
        } catch {
            let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw UsageError("scenario '\(path)' is not valid YAML: \(first)")
        }
        guard let map = node as? [String: Any] else {
            throw UsageError("scenario '\(path)' must be a mapping of settings (key: value)")
        }
        for (key, value) in map.sorted(by: { $0.key < $1.key }) {
            if key == "faults" {
                // `faults:` with every entry commented out is no faults, not an error.
                guard let list = value as? [Any] ?? (value is NSNull ? [] : nil) else {
                    throw UsageError("scenario '\(path)': 'faults' must be a list of {at:, for:, kill|stall|partition|slow:}")
                }
                faults = list
                faultsSource = path
                continue
            }
            guard Settings.keys.contains(key), key != "scenario" else {
                throw UsageError("scenario '\(path)': unknown key '\(key)'")
            }
            switch value {
            case let s as String: values[key] = s
            case let b as Bool: values[key] = b ? "on" : "off"
            case let i as Int: values[key] = String(i)
            case let d as Double: values[key] = String(d)
            default: throw UsageError("scenario '\(path)': '\(key)' must be a number, a word or a string, not \(type(of: value))")
            }
        }
    }

    func string(_ key: String) -> String? { values[key] }

    func int(_ key: String, default d: Int, min lo: Int = Int.min) throws -> Int {
        guard let s = values[key] else { return d }
        guard let v = Int(s) else { throw UsageError("--\(key) must be a whole number (got '\(s)')") }
        guard v >= lo else { throw UsageError("--\(key) must be at least \(lo) (got \(v))") }
        return v
    }

    func double(_ key: String, default d: Double, range: ClosedRange<Double>? = nil) throws -> Double {
        guard let s = values[key] else { return d }
        guard let v = Double(s), v.isFinite else { throw UsageError("--\(key) must be a number (got '\(s)')") }
        if let range, !range.contains(v) {
            throw UsageError("--\(key) must be between \(range.lowerBound) and \(range.upperBound) (got \(s))")
        }
        return v
    }

    func duration(_ key: String, default d: UInt64, positive: Bool = false) throws -> UInt64 {
        guard let s = values[key] else { return d }
        do {
            let ns = try Distribution.parseDuration(s)
            if positive && ns <= 0 { throw UsageError("--\(key) must be positive (got '\(s)')") }
            return UInt64(ns)
        } catch let e as DistributionError {
            throw UsageError("--\(key): \(e.description)")
        }
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, default d: T) throws -> T where T.RawValue == String {
        guard let s = values[key] else { return d }
        guard let v = T(rawValue: s.lowercased()) else {
            throw UsageError("--\(key) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(s)')")
        }
        return v
    }

    /// A size in bytes: a whole or decimal number, with B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
    /// (powers of 1024); no unit: bytes.
    func bytes(_ key: String, default d: Int) throws -> Int {
        guard let s = values[key] else { return d }
        let text = s.trimmingCharacters(in: .whitespaces)
        let digits = text.prefix { $0.isNumber || $0 == "." }
        let unit = text.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let scale: [String: Double] = [
            "": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
            "kib": 1024, "mib": 1_048_576, "gib": 1_073_741_824, "tib": 1_099_511_627_776,
        ]
        guard let number = Double(digits), let factor = scale[unit], number * factor >= 1, number * factor < 1e18 else {
            throw UsageError("--\(key) must be a size such as 512MiB or 4GiB (got '\(s)')")
        }
        return Int(number * factor)
    }

    /// The memory this process may use: the machine's, or its cgroup's limit when that is lower (a container, a
    /// CI job), which is where it would be killed. What the memory checks and `--check-memory`'s default go by.
    static func memory(cgroupFiles: [String] = Settings.cgroupLimitFiles()) -> Double {
        var memory = Double(ProcessInfo.processInfo.physicalMemory)
        for path in cgroupFiles {
            // ("max", or a number near 2^63, where there is no limit.)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                let limit = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0
            else { continue }
            memory = memory > 0 ? min(memory, limit) : limit
        }
        return memory
    }

    /// Where this process's cgroup memory limit may be: its own cgroup's file (v2 `0::/path`, v1 `N:memory:/path`
    /// in /proc/self/cgroup) and the mounted root's (a container's own cgroup, when namespaced).
    static func cgroupLimitFiles() -> [String] {
        var files = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        let lines = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8))?.split(separator: "\n") ?? []
        for line in lines {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[2] != "/" else { continue }
            if parts[0] == "0" && parts[1].isEmpty { files.append("/sys/fs/cgroup\(parts[2])/memory.max") }
            if parts[1].split(separator: ",").contains("memory") {
                files.append("/sys/fs/cgroup/memory\(parts[2])/memory.limit_in_bytes")
            }
        }
        return files
    }

    /// "this machine has 23.4 GiB", saying so when the figure is a cgroup's limit (``memory(cgroupFiles:)``).
    static func machineHas(_ memory: Double) -> String {
        "this machine has \(size(Int(memory)))"
            + (memory < Double(ProcessInfo.processInfo.physicalMemory) ? " (its cgroup's memory limit)" : "")
    }

    /// A size as a person reads it: 512 MiB, 12.0 GiB.
    static func size(_ bytes: Int) -> String {
        if bytes == Int.max { return "no limit" }
        let b = Double(bytes)
        if b >= Double(1 << 30) { return String(format: "%.1f GiB", b / Double(1 << 30)) }
        if b >= Double(1 << 20) { return String(format: "%.0f MiB", b / Double(1 << 20)) }
        return "\(bytes) B"
    }

    func onOff(_ key: String, default d: Bool) throws -> Bool {
        guard let s = values[key]?.lowercased() else { return d }
        switch s {
        case "on", "true", "yes": return true
        case "off", "false", "no": return false
        default: throw UsageError("--\(key) must be on or off (got '\(s)')")
        }
    }

    func distribution(_ key: String, unit: Distribution.Unit = .duration) throws -> Distribution? {
        guard let s = values[key] else { return nil }
        do {
            return try Distribution.parse(s, unit: unit, hlogLoader: HistogramLog.distribution(file:tag:))
        } catch let e as DistributionError {
            throw UsageError("--\(key): \(e.description)")
        }
    }

    /// Builds the run configuration, or names the first problem.
    func runConfig() throws -> RunConfig {
        var c = RunConfig()
        // Features of later issues.
        // The loopback transport arrives with a later issue.
        if let transport = values["transport"]?.lowercased(), transport != "inprocess" {
            guard transport == "loopback" else {
                throw UsageError("--transport must be one of inprocess, loopback (got '\(values["transport"]!)')")
            }
            throw UsageError("--transport \(values["transport"]!) is not available yet")
        }
        c.clock = try choice("clock", default: Clock.real).rawValue
        c.serviceTime = try distribution("service-time")
        if c.serviceTime != nil && c.clock != "virtual" {
            throw UsageError("--service-time needs --clock virtual (in real time the nodes' own work is the service time)")
        }
        c.faults.failureRate = try double("failure-rate", default: 0, range: 0...1)
        if c.faults.failureRate >= 1 { throw UsageError("--failure-rate must be below 1 (every node always down)") }
        c.faults.mttr = try duration("mttr", default: 500_000_000, positive: true)
        c.faults.crashMode = try choice("crash-mode", default: CrashMode.pause)

        c.target = try choice("target", default: TargetKind.cluster)
        if c.target == .noop && c.clock == "virtual" {
            throw UsageError("--target noop measures the generator in real time; it has no --clock virtual")
        }
        c.core.nodes = try int("nodes", default: 5, min: 1)
        c.core.n = try int("n", default: 3, min: 1)
        c.core.w = try int("w", default: 2, min: 1)
        c.core.r = try int("r", default: 2, min: 1)
        c.core.vnodes = try int("vnodes", default: 64, min: 1)
        c.core.routing = try choice("routing", default: Routing.server)
        c.core.versioning = try choice("versioning", default: Versioning.vv)
        c.core.maxSiblings = try int("max-siblings", default: 100, min: 0)
        c.core.readRepair = try onOff("read-repair", default: true)
        c.core.quorum = try choice("quorum", default: QuorumMode.sloppy)
        c.core.hintedHandoff = try onOff("hinted-handoff", default: true)
        c.core.antiEntropy = try onOff("anti-entropy", default: true)
        c.core.aeInterval = try duration("ae-interval", default: 1_000_000_000, positive: true)
        c.core.timeout = try duration("timeout", default: 100_000_000, positive: true)
        c.core.seed = UInt64(try int("seed", default: 1, min: 0))
        c.seed = c.core.seed
        if let problem = c.core.problem { throw UsageError(problem) }

        c.workload = try choice("workload", default: WorkloadName.a)
        var mix = c.workload.mix
        for (i, key) in ["read-proportion", "update-proportion", "insert-proportion", "rmw-proportion", "delete-proportion"].enumerated() {
            mix[i] = try double(key, default: mix[i], range: 0...1)
        }
        if mix.reduce(0, +) <= 0 && c.workload != .visibility { throw UsageError("the operation mix is empty: every proportion is 0") }
        c.proportions = mix
        c.keys = try int("keys", default: 100_000, min: 1)
        c.valueSize = try distribution("value-size", unit: .count) ?? .constant(256)
        if c.valueSize.mean > Double(64 << 20) { throw UsageError("--value-size above 64 MiB is not supported") }
        // Every record is loaded before the run: one that cannot fit in memory would load until the machine runs
        // out. A record costs its value (held once: replicas share it in process) and ~650–800 bytes of versions,
        // store, Merkle and oracle entries (measured: 1.02 GB for 1,000,000 records of 256 B, 4.75 GB of 4 KiB);
        // 512 bytes is a floor, so only a run that surely cannot fit is refused.
        let floor = Double(c.keys) * (c.valueSize.mean + 512)
        let memory = Settings.memory()
        if c.target == .cluster && memory > 0 && floor > memory {
            throw UsageError("--keys \(c.keys) needs at least \(Settings.size(Int(floor))) of memory to load (its value "
                + "and ~512 bytes a record, held in this process); " + Settings.machineHas(memory))
        }
        c.distribution = try choice("distribution", default: c.workload.defaultDistribution)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        c.threads = try int("threads", default: cores, min: 1)
        c.workers = cores
        c.concurrency = try int("concurrency", default: 64, min: 1)
        if c.concurrency < c.threads {
            throw UsageError("--concurrency \(c.concurrency) is less than --threads \(c.threads): every thread needs a request in flight")
        }
        if values["context-cache"] != nil {
            let size = try int("context-cache", default: 0, min: 0)
            if size > 1 << 24 { throw UsageError("--context-cache \(size) is above 16777216 keys a thread") }
            let bytes = RunConfig.contextCacheBytes(capacity: size, threads: c.threads)
            if c.target == .cluster && memory > 0 && bytes > memory {
                throw UsageError("--context-cache \(size) over \(c.threads) threads could take "
                    + Settings.size(Int(bytes)) + "; " + Settings.machineHas(memory))
            }
            c.contextCacheSize = size
        }
        c.consistencyCheck = try onOff("consistency-check", default: true)
        // Half the memory this process may use unless given (``memory(cgroupFiles:)``): the check's growth stops the
        // run well before the machine, or the container, runs out.
        c.checkMemory = try bytes("check-memory", default: memory > 0 ? Int(memory / 2) : Int.max)
        if values["rate"] != nil {
            let rate = try double("rate", default: 0)
            guard rate > 0 else { throw UsageError("--rate must be positive (got \(values["rate"]!))") }
            c.rate = rate
        }
        c.arrival = try choice("arrival", default: Arrival.constant)
        c.duration = try duration("duration", default: 10_000_000_000, positive: true)
        c.warmup = try duration("warmup", default: 2_000_000_000)
        if values["ops"] != nil { c.ops = try int("ops", default: 0, min: 1) }
        c.drop = try double("drop", default: 0, range: 0...1)
        if c.drop >= 1 { throw UsageError("--drop must be below 1 (every message lost)") }
        let all = try distribution("delay")
        c.delays = Delays(all: all, client: try distribution("delay-client"), write: try distribution("delay-write"),
                          writeAck: try distribution("delay-write-ack"), read: try distribution("delay-read"),
                          readResponse: try distribution("delay-read-response"))
        c.faults.scripted = try scriptedFaults(nodes: c.core.nodes)
        if let text = values["probe-times"] { c.probeTimes = try Settings.probeTimes(text) }
        if c.workload == .visibility {
            guard c.clock == "virtual" else {
                throw UsageError("--workload visibility runs in virtual time: add --clock virtual")
            }
            guard c.consistencyCheck else {
                throw UsageError("--workload visibility measures staleness: it cannot run with --consistency-check off")
            }
            c.core.readRepair = false  // probe reads must not repair what they measure
            if c.ops == nil { c.ops = 10_000 }
        }
        if c.clock == "virtual" && c.delays.isEmpty && c.serviceTime == nil {
            throw UsageError("--clock virtual needs a --delay (or --delay-*, --service-time): with nothing taking time, virtual time would not advance")
        }
        c.core.sizeMerkleTrees(forKeys: c.keys)
        c.settings = effectiveSettings(c)
        return c
    }

    /// The scenario's `faults:` entries, checked: `{at: 5s, for: 2s, kill: [2]}` and the like (SPEC.md).
    func scriptedFaults(nodes: Int) throws -> [ScriptedFault] {
        try faults.enumerated().map { i, entry in
            func fail(_ why: String) -> UsageError { UsageError("scenario '\(faultsSource)': faults[\(i + 1)]: \(why)") }
            guard let map = entry as? [String: Any] else { throw fail("must be a mapping like {at: 5s, for: 2s, kill: [2]}") }
            func time(_ key: String) throws -> UInt64 {
                guard let v = map[key] else { throw fail("'\(key)' is missing") }
                do { return UInt64(try Distribution.parseDuration("\(v)")) } catch { throw fail("'\(key)' must be a duration like 5s (got '\(v)')") }
            }
            func nodeList(_ v: Any, _ key: String) throws -> [Int] {
                if let s = v as? String, s == "all" { return Array(0..<nodes) }
                let raw: [Any] = (v as? [Any]) ?? [v]
                return try raw.map { x in
                    guard let n = x as? Int else { throw fail("'\(key)' must be 'all' or a list of node numbers (got '\(x)')") }
                    guard (1...nodes).contains(n) else { throw fail("node \(n) in '\(key)' is not one of 1…\(nodes)") }
                    return n - 1
                }
            }
            let kinds = ["kill", "stall", "partition", "slow"].filter { map[$0] != nil }
            guard kinds.count == 1 else { throw fail("needs exactly one of kill, stall, partition, slow") }
            for key in map.keys where !["at", "for", "kill", "stall", "partition", "slow", "delay"].contains(key) {
                throw fail("unknown key '\(key)'")
            }
            let at = try time("at"), length = try time("for")
            guard length > 0 else { throw fail("'for' must be positive") }
            let kind: ScriptedFault.Kind
            switch kinds[0] {
            case "kill": kind = .kill(try nodeList(map["kill"]!, "kill"))
            case "stall": kind = .stall(try nodeList(map["stall"]!, "stall"))
            case "partition":
                guard let groups = map["partition"] as? [Any], groups.count >= 2 else {
                    throw fail("'partition' must list at least two groups, like [[1, 2], [3, 4, 5]]")
                }
                let lists = try groups.map { try nodeList($0, "partition") }
                let all = lists.flatMap { $0 }
                guard Set(all).count == all.count else { throw fail("a node is in two partition groups") }
                kind = .partition(lists)
            default:
                guard let d = map["delay"] else { throw fail("'slow' needs 'delay: DIST'") }
                do { kind = .slow(try nodeList(map["slow"]!, "slow"), try Distribution.parse("\(d)", unit: .duration)) }
                catch let e as DistributionError { throw fail("delay: \(e.description)") }
            }
            return ScriptedFault(at: at, for: length, kind)
        }
    }

    /// `--probe-times`: a comma list of durations, or START:END:STEP.
    static func probeTimes(_ text: String) throws -> [UInt64] {
        func d(_ s: Substring) throws -> UInt64 {
            do {
                let v = try Distribution.parseDuration(String(s).trimmingCharacters(in: .whitespaces))
                guard v >= 0 else { throw UsageError("--probe-times: '\(s)' is negative") }
                return UInt64(v)
            } catch let e as DistributionError { throw UsageError("--probe-times: \(e.description)") }
        }
        var out: [UInt64]
        if text.contains(":") {
            let parts = text.split(separator: ":")
            guard parts.count == 3 else { throw UsageError("--probe-times must be START:END:STEP or a comma list (got '\(text)')") }
            let (start, end, step) = (try d(parts[0]), try d(parts[1]), try d(parts[2]))
            guard step > 0, end >= start else { throw UsageError("--probe-times: STEP must be positive and END ≥ START (got '\(text)')") }
            guard (end - start) / step < 100_000 else { throw UsageError("--probe-times: more than 100,000 offsets") }
            out = Array(stride(from: start, through: end, by: Int(step)))
        } else {
            out = try text.split(separator: ",").map(d)
        }
        guard !out.isEmpty else { throw UsageError("--probe-times is empty") }
        return Array(Set(out)).sorted()
    }

    /// Every setting as it will run, flag name → value.
    func effectiveSettings(_ c: RunConfig) -> [(String, String)] {
        func d(_ ns: UInt64) -> String { Distribution.formatDuration(Double(ns)) }
        func dist(_ k: MessageKind) -> String { c.delays[k]?.render(.duration) ?? "none" }
        return [
            ("target", c.target.rawValue), ("transport", c.transport), ("clock", c.clock),
            ("nodes", "\(c.core.nodes)"), ("n", "\(c.core.n)"), ("w", "\(c.core.w)"), ("r", "\(c.core.r)"),
            ("quorum", c.core.quorum.rawValue), ("routing", c.core.routing.rawValue), ("vnodes", "\(c.core.vnodes)"),
            ("versioning", c.core.versioning.rawValue), ("max-siblings", "\(c.core.maxSiblings)"), ("read-repair", c.core.readRepair ? "on" : "off"),
            ("hinted-handoff", c.core.hintedHandoff ? "on" : "off"), ("anti-entropy", c.core.antiEntropy ? "on, trees of depth \(c.core.merkleDepth)" : "off"),
            ("ae-interval", d(c.core.aeInterval)),
            ("timeout", d(c.core.timeout)), ("workload", c.workload.rawValue),
            ("mix (read/update/insert/rmw/delete)", c.proportions.map { String(format: "%g", $0) }.joined(separator: "/")),
            ("keys", "\(c.keys)"), ("value-size", c.valueSizeText), ("distribution", c.distribution.rawValue),
            ("threads", "\(c.threads)"), ("workers", c.workersHosted ? "\(c.workers), on the load threads" : "\(c.workers)"), ("concurrency", "\(c.concurrency)"),
            ("context-cache", c.contextCache == 0 ? "0 (every update blind)" : "\(c.contextCache) keys a thread"),
            ("consistency-check", c.target == .noop ? "– (noop target)" : c.consistencyCheck ? "on" : "off (stale reads and lost writes not measured)"),
            ("check-memory", c.checksConsistency ? Settings.size(c.checkMemory) : "–"),
            ("rate", c.rate.map { String(format: "%g", $0) } ?? "closed loop"), ("arrival", c.arrival.rawValue),
            ("duration", c.ops == nil ? d(c.duration) : "until --ops"), ("warmup", d(c.warmup)),
            ("ops", c.ops.map(String.init) ?? "–"),
            ("probe-times", c.workload == .visibility ? "\(c.probeTimes.count) offsets, \(Distribution.formatDuration(Double(c.probeTimes.first ?? 0)))…\(Distribution.formatDuration(Double(c.probeTimes.last ?? 0)))" : "–"),
            ("delay-client", dist(.client)), ("delay-write", dist(.write)), ("delay-write-ack", dist(.writeAck)),
            ("delay-read", dist(.read)), ("delay-read-response", dist(.readResponse)),
            ("service-time", c.serviceTime?.render(.duration) ?? "none"),
            ("drop", String(format: "%g", c.drop)), ("failure-rate", String(format: "%g", c.faults.failureRate)),
            ("mttr", d(c.faults.mttr)), ("crash-mode", c.faults.crashMode.rawValue),
            ("scripted faults", c.faults.scripted.isEmpty ? "none" : "\(c.faults.scripted.count)"), ("seed", "\(c.seed)"),
        ]
    }
}
