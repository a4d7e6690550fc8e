"""Large targets: a snapshot with 10,000 pods and 1,000 NetworkPolicies audits in bounded memory.

The snapshot and the audit are those of benchmarks/large_target.py (which records wall time
and peak RSS for docs/benchmarks.md); here only the bound is asserted, not the speed.
"""

from __future__ import annotations

from tests.conftest import load_benchmark

PEAK_RSS_BOUND_MIB = 512  # measured ~155 MiB; a per-pod leak or a pods x pods matrix would pass it


def test_ten_thousand_pods_audit_in_bounded_memory(tmp_path):
    bench = load_benchmark("large_target")
    snapshot = tmp_path / "snapshot.json"
    bench.build_snapshot(snapshot, pods=10_000, policies=1_000, namespaces=100)
    row = bench.audit(bench.build_profile(tmp_path, snapshot), tmp_path / "reports")
    print(f"\nlarge target (10,000 pods, 1,000 policies): {row['wall_s']}s, peak RSS {row['peak_rss_mib']} MiB, totals {row['totals']}")
    assert row["results"], row.get("output_tail")
    assert row["totals"]["error"] == 0 and row["totals"]["pass"] and row["totals"]["fail"], row["totals"]
    assert row["exit"] in (0, 1), row  # a verdict, not a usage error (2) nor a could-not-evaluate (3)
    assert row["peak_rss_mib"] < PEAK_RSS_BOUND_MIB, row
