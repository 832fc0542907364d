import ArgumentParser

/// Every `run` flag (SPEC.md), shared by `run` and `sweep`. Values stay text until ``Settings`` checks them, so
/// that a scenario file and the flags go through the same validation.
struct RunOptions: ParsableArguments {
    @Option(help: "YAML scenario with the same keys as the long flags; flags override it.") var scenario: String?
    @Option(help: "cluster | noop (noop completes every request at once: the generator's ceiling).") var target: String?
    @Option(help: "inprocess | loopback.") var transport: String?
    @Option(help: "real | virtual.") var clock: String?
    @Option(help: "Nodes in the cluster (M ≥ n).") var nodes: String?
    @Option(name: .customLong("n"), help: "Replicas per key.") var n: String?
    @Option(name: .customLong("w"), help: "Write quorum.") var w: String?
    @Option(name: .customLong("r"), help: "Read quorum.") var r: String?
    @Option(help: "sloppy | strict.") var quorum: String?
    @Option(help: "server | client (who coordinates).") var routing: String?
    @Option(help: "Virtual nodes per node on the ring.") var vnodes: String?
    @Option(help: "vv | lww.") var versioning: String?
    @Option(name: .customLong("max-siblings"),
            help: "vv: a replica refuses a write that would leave its key with more versions (Riak's max_siblings; default 100, 0: no limit).")
    var maxSiblings: String?
    @Option(name: .customLong("read-repair"), help: "on | off.") var readRepair: String?
    @Option(name: .customLong("hinted-handoff"), help: "on | off.") var hintedHandoff: String?
    @Option(name: .customLong("anti-entropy"), help: "on | off.") var antiEntropy: String?
    @Option(name: .customLong("ae-interval"), help: "Anti-entropy interval.") var aeInterval: String?
    @Option(help: "Per-request timeout at the coordinator (default 100ms).") var timeout: String?
    @Option(help: "a | b | c | d | f | visibility (YCSB core mixes).") var workload: String?
    @Option(name: .customLong("read-proportion")) var readProportion: String?
    @Option(name: .customLong("update-proportion")) var updateProportion: String?
    @Option(name: .customLong("insert-proportion")) var insertProportion: String?
    @Option(name: .customLong("rmw-proportion")) var rmwProportion: String?
    @Option(name: .customLong("delete-proportion")) var deleteProportion: String?
    @Option(help: "Records loaded before the measured phase (default 100000).") var keys: String?
    @Option(name: .customLong("value-size"), help: "Bytes, or a distribution of sizes (default 256).") var valueSize: String?
    @Option(help: "uniform | zipfian | latest | hotspot.") var distribution: String?
    @Option(help: "Load-generator threads (default: cores).") var threads: String?
    @Option(help: "Requests in flight at most, all threads together (default 64).") var concurrency: String?
    @Option(name: .customLong("context-cache"),
            help: "Keys whose latest context each load thread keeps for its updates (default: room for twice --keys, at least 65536; 0: every update is blind).")
    var contextCache: String?
    @Option(name: .customLong("consistency-check"),
            help: "on | off: classify reads as stale and count lost writes (default on; the check keeps ~38 bytes a write until the run ends: off for long runs at full speed).")
    var consistencyCheck: String?
    @Option(name: .customLong("check-memory"),
            help: "The most memory the consistency check may hold, e.g. 4GiB (default: half of what this process may use: the machine's memory, or its cgroup's limit). A run whose check grows past it ends its measured phase there, writes its report and exits 1.")
    var checkMemory: String?
    @Option(help: "Open loop at this many ops/s in total; omit for closed loop.") var rate: String?
    @Option(help: "constant | poisson (open-loop spacing).") var arrival: String?
    @Option(help: "Measured phase (default 10s).") var duration: String?
    @Option(help: "Warm-up, excluded from totals (default 2s).") var warmup: String?
    @Option(help: "Stop after this many measured operations instead of a duration.") var ops: String?
    @Option(help: "One-way delay of every message between nodes.") var delay: String?
    @Option(name: .customLong("delay-client")) var delayClient: String?
    @Option(name: .customLong("delay-write")) var delayWrite: String?
    @Option(name: .customLong("delay-write-ack")) var delayWriteAck: String?
    @Option(name: .customLong("delay-read")) var delayRead: String?
    @Option(name: .customLong("delay-read-response")) var delayReadResponse: String?
    @Option(help: "Probability that a message between nodes is lost.") var drop: String?
    @Option(name: .customLong("failure-rate")) var failureRate: String?
    @Option var mttr: String?
    @Option(name: .customLong("service-time")) var serviceTime: String?
    @Option(name: .customLong("crash-mode")) var crashMode: String?
    @Option(name: .customLong("probe-times")) var probeTimes: String?
    @Option(help: "Every random choice derives from it (default 1).") var seed: String?
    @Option(help: "Run folder (default reports/latest).") var out: String?
    @Flag(help: "No live progress line.") var quiet = false

    func settings() throws -> Settings {
        var s = Settings()
        if let scenario { try s.loadScenario(scenario) }
        let flags: [(String, String?)] = [
            ("target", target), ("transport", transport), ("clock", clock), ("nodes", nodes), ("n", n), ("w", w),
            ("r", r), ("quorum", quorum), ("routing", routing), ("vnodes", vnodes), ("versioning", versioning),
            ("max-siblings", maxSiblings),
            ("read-repair", readRepair), ("hinted-handoff", hintedHandoff), ("anti-entropy", antiEntropy),
            ("ae-interval", aeInterval), ("timeout", timeout), ("workload", workload),
            ("read-proportion", readProportion), ("update-proportion", updateProportion),
            ("insert-proportion", insertProportion), ("rmw-proportion", rmwProportion),
            ("delete-proportion", deleteProportion), ("keys", keys), ("value-size", valueSize),
            ("distribution", distribution), ("threads", threads), ("concurrency", concurrency),
            ("context-cache", contextCache), ("consistency-check", consistencyCheck), ("check-memory", checkMemory), ("rate", rate),
            ("arrival", arrival), ("duration", duration), ("warmup", warmup), ("ops", ops), ("delay", delay),
            ("delay-client", delayClient), ("delay-write", delayWrite), ("delay-write-ack", delayWriteAck),
            ("delay-read", delayRead), ("delay-read-response", delayReadResponse), ("drop", drop),
            ("failure-rate", failureRate), ("mttr", mttr), ("service-time", serviceTime), ("crash-mode", crashMode),
            ("probe-times", probeTimes), ("seed", seed), ("out", out),
        ]
        for (k, v) in flags { if let v { s.values[k] = v } }
        if quiet { s.values["quiet"] = "on" }
        return s
    }
}
