"""Turns package-benchmark's markdown output into reports/benchmarks.md: p50 per benchmark, required ratios."""
import datetime
import re
import sys

raw_path, out_path, command, machine = sys.argv[1:5]
runs = sys.argv[5] if len(sys.argv) > 5 else None
results = {}  # name -> {metric: {"p50": value, "unit": unit}}
current = None
for line in open(raw_path, encoding="utf-8"):
    m = re.match(r"^### (\S+)", line)
    if m:
        current = m.group(1)
        results[current] = {}
        continue
    if current and line.startswith("|") and not line.startswith("| Metric") and not line.startswith("|:"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 9 or not cells[3].replace(".", "").isdigit():
            continue
        name = cells[0].rstrip(" *")
        unit = re.search(r"\(([^)]*)\)\s*$", name)
        results[current][name] = {"p50": float(cells[3]), "unit": unit.group(1) if unit else ""}


def p50(bench, metric_prefix="Time (wall clock)"):
    for metric, v in results.get(bench, {}).items():
        if metric.startswith(metric_prefix):
            return v["p50"], v["unit"]
    return None, None


lines = [
    "# Benchmark figures",
    "",
    f"Command: `{command}` — machine: {machine} — {datetime.date.today().isoformat()}.",
    "",
    "Ratios compare benchmarks measured in the same run. p50 of wall-clock time; the machine is shared and noisy,",
    "so compare ratios, not absolute times across runs.",
    "",
]
failures = []


def check(label, ok):
    if not ok:
        failures.append(label)
    return "yes" if ok else "**NO**"


SIZES = ["64B", "256B", "4096B"]


def trio(pattern, size):
    """p50 of the pool, mallocx and malloc variants of one benchmark, or None if any is missing."""
    values = [p50(pattern.format(kind=k, size=size))[0] for k in ("pool", "mallocx", "malloc")]
    return None if None in values else values


same = [b for b in results if b.startswith("same-thread/pool/")]
if same:
    lines += [
        "## Buffer pool: acquire + release on one thread",
        "",
        "Time per 1,000 acquire+release pairs (ns). Requirement: pool ≤ 1.0 × raw `mallocx`+`sdallocx` at p50.",
        "",
        "| size | pool | mallocx+sdallocx | malloc+free | pool / mallocx | pool / malloc | meets ≤ 1.0 |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for size in SIZES:
        t = trio("same-thread/{kind}/{size}", size)
        if t is None:
            continue
        pool, mx, ml = t
        r = pool / mx
        lines.append(f"| {size} | {pool:.0f} | {mx:.0f} | {ml:.0f} | {r:.2f} | {pool / ml:.2f} | {check(f'same-thread {size}', r <= 1.0)} |")
    lines.append("")

cross = [b for b in results if b.startswith("cross-thread/pool/")]
if cross:
    lines += [
        "## Buffer pool: one thread acquires, another releases",
        "",
        "Time per buffer (ns) through a single-producer ring to a consumer thread. Requirement: pool ≤ 1.5 × raw",
        "`mallocx`+`sdallocx`.",
        "",
        "The separate benchmarks give the absolute times; they run minutes apart, and on this shared 2-core machine",
        "jemalloc's own cross-thread cost swings by several times between runs, so the requirement is checked on",
        "`cross-thread-paired/*`, which times 200,000 buffers through the pool and then 200,000 through",
        "`mallocx`/`sdallocx` in every iteration and reports their ratio (p50 over the iterations).",
        "",
        "| size | pool | mallocx+sdallocx | malloc+free | pool / mallocx, paired p50 | meets ≤ 1.5 |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for size in SIZES:
        t = trio("cross-thread/{kind}/{size}", size)
        paired, _ = p50(f"cross-thread-paired/{size}", "pool / mallocx")
        if t is None or paired is None:
            continue
        pool, mx, ml = t
        r = paired / 1000
        lines.append(f"| {size} | {pool:.0f} | {mx:.0f} | {ml:.0f} | {r:.2f} | {check(f'cross-thread {size}', r <= 1.5)} |")
    lines.append("")

if "churn/pool/1GiB-live-64MiB" in results:
    arena, _ = p50("churn/pool/1GiB-live-64MiB", "arena resident")
    rss, _ = p50("churn/pool/1GiB-live-64MiB", "process RSS growth")
    limit = 1.25 * 64 + 16
    lines += [
        "## Buffer pool: memory after churn",
        "",
        "1 GiB of acquisitions, sizes log-uniform 16 B – 64 KiB, through a live set held at 64 MiB; measured 1.5 s",
        f"after the churn (arena decay 1 s). Requirement: resident ≤ 1.25 × 64 MiB + 16 MiB = {limit:.0f} MiB.",
        "",
        "| figure | MiB | meets |",
        "|---|---:|---|",
        f"| pool arena resident (`stats.arenas.<i>.resident`) | {arena:.0f} | {check('churn arena resident', arena <= limit)} |",
        f"| process RSS growth (`/proc/self/statm`) | {rss:.0f} | {check('churn RSS', rss <= limit)} |",
        "",
    ]

if "recorder/record-1000-values" in results:
    t, _ = p50("recorder/record-1000-values")
    lines += [
        "## Load generator: recording one latency",
        "",
        "`ThreadRecorder.record` (HdrHistogram, 3 digits, ns) for 1,000 precomputed latencies per iteration; `record` is inlinable, so it is inlined into the caller as in the load generator.",
        "Requirement: ≤ 10 ns per value.",
        "",
        "| ns per value (p50) | meets |",
        "|---:|---|",
        f"| {t / 1000:.2f} | {check('record one value', t / 1000 <= 10)} |",
        "",
    ]

import csv, json, os


def run_row(folder, op="all"):
    for r in csv.DictReader(open(os.path.join(folder, "summary.csv"))):
        if r["op"] == op:
            return r
    return None


if runs and os.path.exists(os.path.join(runs, "noop-closed")):
    closed = run_row(os.path.join(runs, "noop-closed"))
    openj = json.load(open(os.path.join(runs, "noop-open", "run.json")))
    sched = openj["schedule"]
    def cluster_runs(name):
        rows, i = [], 1
        while os.path.exists(os.path.join(runs, f"cluster-{name}-{i}")):
            rows.append(run_row(os.path.join(runs, f"cluster-{name}-{i}")))
            i += 1
        rows.sort(key=lambda r: float(r["throughput_ops_s"]))
        return rows[len(rows) // 2], ", ".join(f"{float(r['throughput_ops_s']):,.0f}" for r in rows)
    n3, all3 = cluster_runs("n3")
    n1, all1 = cluster_runs("n1")
    nocheck, allnc = cluster_runs("nocheck") if os.path.exists(os.path.join(runs, "cluster-nocheck-1")) else (None, "")
    c_ops = float(closed["throughput_ops_s"])
    lag = sched.get("lag_p99_us", 0.0)
    t3, t1 = float(n3["throughput_ops_s"]), float(n1["throughput_ops_s"])
    lines += [
        "## quorumbench run",
        "",
        "Release build, default flags unless shown; each figure from the run folder's summary.csv or run.json. The",
        "cluster runs are five alternating n=3 / n=1 pairs of 10 s (after 2 s of warm-up); the figure is the median,",
        "the five runs follow it in brackets (single 10 s runs of one binary spread by ±15% on this shared machine).",
        "",
        "| measurement | command | figure | requirement | meets |",
        "|---|---|---:|---|---|",
        f"| generator ceiling, closed loop | `run --target noop --threads 1 --duration 5s` | {c_ops:,.0f} ops/s | ≥ 3,000,000 | {check('noop closed', c_ops >= 3e6)} |",
        f"| open-loop schedule lag p99 | `run --target noop --threads 1 --rate 200000 --duration 5s` | {lag:.1f} µs (achieved {sched['achieved_rate']:,.0f}/s) | ≤ 50 µs | {check('open-loop lag', lag <= 50)} |",
        f"| cluster n=3 w=2 r=2, YCSB A, 100k × 256 B, 64 in flight, oracle on | `run --duration 10s` | {t3:,.0f} ops/s (p99 {float(n3['p99_us']):.0f} µs) [{all3}] | ≥ 300,000 | {check('cluster n=3 throughput', t3 >= 3e5)} |",
        f"| cluster n=1 w=1 r=1, same run settings | `run --duration 10s --n 1 --w 1 --r 1` | {t1:,.0f} ops/s [{all1}] | — | — |",
        f"| cost of an n=3 operation / an n=1 operation | (the two medians above) | {t1 / t3:.2f} | ≤ 4 | {check('n=3 cost ratio', t1 / t3 <= 4)} |",
    ]
    if nocheck:
        def resident(prefix):
            values, i = [], 1
            while os.path.exists(os.path.join(runs, f"{prefix}-{i}")):
                values.append(json.load(open(os.path.join(runs, f"{prefix}-{i}", "run.json")))["memory"]["jemalloc_resident"] / 2**20)
                i += 1
            return sorted(values)[len(values) // 2]
        tn = float(nocheck["throughput_ops_s"])
        lines += [
            f"| cluster n=3 w=2 r=2 without the oracle (no stale-read or lost-write figures) | `run --duration 10s --consistency-check off` | {tn:,.0f} ops/s (p99 {float(nocheck['p99_us']):.0f} µs) [{allnc}] | — | — |",
            f"| throughput without / with the oracle; jemalloc resident at the end, median | (the medians above) | {tn / t3:.2f}; {resident('cluster-nocheck'):,.0f} MiB without, {resident('cluster-n3'):,.0f} MiB with | — | — |",
        ]
    lines += [""]

def per_second(folder):
    """The measured seconds' throughput (ops/s) from timeseries.csv: full seconds only (the row of the stragglers
    that completed after the measured phase ended starts at duration_s)."""
    duration = float(run_row(folder)["duration_s"])
    return [float(r["ops"]) for r in csv.DictReader(open(os.path.join(folder, "timeseries.csv")))
            if r["phase"] == "measured" and r["op"] == "all" and float(r["t_s"]) + 1 <= duration]


if runs and os.path.exists(os.path.join(runs, "cluster-lww")):
    lww = float(run_row(os.path.join(runs, "cluster-lww"))["throughput_ops_s"])
    rows = []
    for name in sorted(os.listdir(runs)):
        if name.startswith("cluster-n3-") or name == "cluster-lww":
            s = per_second(os.path.join(runs, name))
            rows.append(f"| `{name}` | {s[0]:,.0f} | {s[-1]:,.0f} | {s[-1] / s[0]:.2f} |")
    lines += [
        "## Throughput over a run",
        "",
        "Operations in the first and the last full second of each 10 s cluster run above, and of the same run under",
        "`--versioning lww` (where every write lost stays unsuperseded, so the oracle's searches must not grow with",
        "them; under `vv` a key's siblings, carried by every operation on it, grow with blind updates: see `--context-cache`).",
        "Requirement (ours, a regression guard): the lww run ≥ 0.5 × the n=3 median.",
        "",
        "| run | first second | last second | last / first |",
        "|---|---:|---:|---:|",
    ] + rows + [
        "",
        f"lww {lww:,.0f} ops/s = {lww / t3:.2f} × the n=3 median: {check('lww throughput', lww >= 0.5 * t3)}.",
        "",
    ]

if runs and os.path.exists(os.path.join(runs, "ae-on-1")):
    pairs = []
    i = 1
    while os.path.exists(os.path.join(runs, f"ae-on-{i}")):
        on = float(run_row(os.path.join(runs, f"ae-on-{i}"))["throughput_ops_s"])
        off = float(run_row(os.path.join(runs, f"ae-off-{i}"))["throughput_ops_s"])
        pairs.append((on, off))
        i += 1
    ratios = sorted(on / off for on, off in pairs)
    median = ratios[len(ratios) // 2]
    lines += [
        "## Anti-entropy overhead",
        "",
        "The default cluster run (`run --duration 3s --warmup 1s`) with `--anti-entropy on` (Merkle trees kept on every",
        "write, one exchange per node per `--ae-interval` 1s) and `off`, in alternating pairs (seven: single pairs swing",
        "by ±30% on this machine), on first in odd pairs and off first in even ones. Requirement: on ≥ 0.9 × off",
        "(median of the pairs' ratios).",
        "",
        "| pair | on (ops/s) | off (ops/s) | on / off |",
        "|---:|---:|---:|---:|",
    ] + [f"| {n + 1} | {on:,.0f} | {off:,.0f} | {on / off:.3f} |" for n, (on, off) in enumerate(pairs)] + [
        "",
        f"Median ratio {median:.3f}: {check('anti-entropy overhead', median >= 0.9)}.",
        "",
    ]

if runs and os.path.exists(os.path.join(runs, "sim-server")):
    lines += [
        "## Virtual time",
        "",
        "`run --clock virtual --delay \"exp(mean=1ms)\" --ops 1000000 --keys 10000 --warmup 0s` (n=3 w=2 r=2, YCSB A),",
        "one thread; wall time of the whole command (10,000-record load, repair and report included), the fastest of",
        "three runs of the same seed (identical work; only the shared machine varies). Requirement:",
        "≥ 1,000,000 simulated quorum operations per second of wall time.",
        "",
        "| routing | operations | wall (s) | events | simulated ops / wall s | meets |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for routing in ("server", "client", "nocheck"):
        folder = os.path.join(runs, f"sim-{routing}")
        if not os.path.exists(folder):
            continue
        wall = float(open(os.path.join(folder, "wall_seconds")).read())
        ops = int(run_row(folder)["attempted"])
        events = json.load(open(os.path.join(folder, "run.json"))).get("simulated_events", 0)
        if routing == "nocheck":  # not the requirement's run: the same work, unobserved
            lines.append(f"| server, `--consistency-check off` | {ops:,} | {wall:.2f} | {events:,} | {ops / wall:,.0f} | — |")
        else:
            lines.append(f"| {routing} | {ops:,} | {wall:.2f} | {events:,} | {ops / wall:,.0f} | {check(f'simulation speed ({routing})', ops / wall >= 1e6)} |")
    sweep_wall = float(open(os.path.join(runs, "sweep", "wall_seconds")).read())
    points = len(os.listdir(os.path.join(runs, "sweep", "points")))
    lines += [
        "",
        f"Sweep: `sweep --clock virtual --delay \"exp(mean=1ms)\" --w 1,2,3 --r 1,2,3 --failure-rate 0,0.05,0.2 --ops 100000 --keys 10000 --warmup 0s`:",
        f"{points} points in {sweep_wall:.1f} s (points run one per core). Requirement: under 30 s: {check('27-point sweep', sweep_wall < 30)}.",
        "",
    ]

lines += ["## Verdict", "", "All requirements met." if not failures else "Not met: " + ", ".join(failures), ""]
open(out_path, "w", encoding="utf-8").write("\n".join(lines))
print("\n".join(lines))
sys.exit(1 if failures else 0)
