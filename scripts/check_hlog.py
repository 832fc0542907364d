#!/usr/bin/env python3
"""Cross-checks a run folder's latency.hlog against its summary.csv with HdrHistogram's own Python reader.

Usage: scripts/check_hlog.py RUN_FOLDER
Decodes every interval of latency.hlog (PyPI package `hdrhistogram`), merges them per tag, and compares the count
and the p50/p90/p99/max with the matching summary.csv row. Exits 1 on a mismatch.
"""
import csv
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
    for q, col in ((50, "p50_us"), (90, "p90_us"), (99, "p99_us")):
        ours = float(row[col])
        theirs = h.get_value_at_percentile(q) / 1000
        # Both sides report a value of the same bucket, which at 3 significant digits spans up to ~0.2% of the
        # value; the readers pick different ends of it. 0.5% still catches a wrong bucket, unit or count.
        if abs(ours - theirs) > max(0.005 * theirs, 0.1):
            problems.append(f"{tag}: p{q} hlog {theirs:.1f} us != summary {ours:.1f} us")
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
