#!/usr/bin/env python3
"""Cross-checks a run folder's latency.hlog against its summary.csv with HdrHistogram's own Python reader.

Usage: scripts/check_hlog.py RUN_FOLDER
Decodes every interval of latency.hlog (PyPI package `hdrhistogram`), merges them per tag, and compares the count
and the p50/p90/p99/max with the matching summary.csv row. Exits 1 on a mismatch.
"""
import csv
import math
import sys

from hdrh.histogram import HdrHistogram

folder = sys.argv[1]
merged = {}
for line in open(f"{folder}/latency.hlog"):
    if not line.startswith("Tag="):
        continue
    fields = line.strip().split(",")
    tag = fields[0][4:]
    h = HdrHistogram.decode(fields[-1])
    if tag not in merged:
        merged[tag] = HdrHistogram(1, 3_600_000_000_000, 3)
    merged[tag].add(h)

def value_at_rank(h, k):
    """The lowest value of the bucket holding the k-th smallest recorded value (1-based)."""
    total = 0
    for index in range(h.counts_len):
        total += h.get_count_at_index(index)
        if total >= k:
            return h.get_lowest_equivalent_value(h.get_value_from_index(index))
    return 0


rows = {r["op"]: r for r in csv.DictReader(open(f"{folder}/summary.csv"))}
problems = []
checked = 0
for tag, h in merged.items():
    row = rows.get(tag)
    if row is None:
        problems.append(f"tag {tag} has no summary row")
        continue
    if h.get_total_count() != int(row["ok"]):
        problems.append(f"{tag}: hlog count {h.get_total_count()} != summary ok {row['ok']}")
    n = h.get_total_count()
    for q, col in ((50, "p50_us"), (90, "p90_us"), (99, "p99_us")):
        ours = float(row[col])
        theirs = h.get_value_at_percentile(q) / 1000
        # The readers differ in two ways, neither a bug: which rank a percentile names (this reader rounds
        # q·N/100, hdrhistogram-swift does not; in a sparse tail neighbouring ranks can be several buckets apart),
        # and which end of a bucket they report (3 significant digits: up to ~0.2% of the value). So our figure
        # must lie within 0.5% of the values at the ranks either convention can name; that still catches a wrong
        # bucket, unit or count.
        x = q * n / 100
        ranks = range(max(1, math.floor(x)), min(n, math.ceil(x) + 1) + 1)
        values = [value_at_rank(h, k) for k in ranks]
        lo = min(values) / 1000
        hi = h.get_highest_equivalent_value(max(values)) / 1000
        if not (lo * 0.995 - 0.1 <= ours <= hi * 1.005 + 0.1):
            problems.append(f"{tag}: p{q} hlog {theirs:.1f} us (ranks {ranks.start}-{ranks.stop - 1}: "
                            f"{lo:.1f}-{hi:.1f}) != summary {ours:.1f} us")
    if abs(h.get_max_value() / 1000 - float(row["max_us"])) > max(0.005 * float(row["max_us"]), 0.1):
        problems.append(f"{tag}: max hlog {h.get_max_value() / 1000:.1f} us != summary {row['max_us']} us")
    checked += 1
for p in problems:
    print(p)
if checked == 0:
    print("no interval decoded")
    sys.exit(1)
if not problems:
    print(f"latency.hlog agrees with summary.csv for {checked} tags ({', '.join(sorted(merged))})")
sys.exit(1 if problems else 0)
