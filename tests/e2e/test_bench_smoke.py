"""The benchmarks still run (a tiny version): their figures are reported by `make bench`, not asserted here."""
import json
import subprocess
import sys

from sms.config import PROJECT_ROOT


def test_the_benchmark_suite_runs_and_reports_every_area(tmp_path):
    out = tmp_path / "rows.json"
    result = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--json", str(out)], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert {row["area"] for row in rows} == {"accept", "fan-out", "dispatch", "memory", "wire", "ledger", "scheduled",
                                                 "latency", "transactions"}
    assert all(isinstance(row["value"], (int, float)) and row["value"] >= 0 for row in rows)
    assert (PROJECT_ROOT / "bench" / "throughput.png").stat().st_size > 0

    # The accept part loads two dev hosts (today's two-call path, and the one-call path of issue 30) and the bare
    # floors (a child process making the same storage calls, signed by hand: the two-call floor's two, the one-put
    # floor's one) and reads their CPU: every figure is there, measured.
    accept = {row["measure"]: row for row in rows if row["area"] == "accept"}
    for c in (1, 8, 32):
        for measure in (f"gateway req/s @{c}", f"bare floor req/s @{c}", f"raw SDK floor req/s @{c}",
                        f"gateway CPU per request @{c}", f"bare floor CPU per request @{c}",
                        f"gateway one-call req/s @{c}", f"bare one-put floor req/s @{c}",
                        f"gateway one-call CPU per request @{c}", f"bare one-put floor CPU per request @{c}"):
            assert accept[measure]["value"] > 0, measure
        assert accept[f"gateway/bare floor CPU @{c}"]["target"] == "<= 1.2 (issue 17 target)"
        assert accept[f"gateway/bare floor CPU @{c}"]["met"] is None  # information, not a verdict
        assert accept[f"gateway one-call/bare one-put floor CPU @{c}"]["target"] == "<= 1.2 (issue 30 target)"
        assert accept[f"gateway one-call/bare one-put floor CPU @{c}"]["met"] is None
    # Only baselines from the same run: no constant measured elsewhere, in any part.
    assert not any("jasmin" in (row["measure"] + row["target"]).lower() for row in rows)
    dispatch = {row["measure"]: row for row in rows if row["area"] == "dispatch"}
    assert dispatch["provider floor (adapter alone) SMS/s"]["value"] > 0
    assert dispatch["instant: dispatch / provider floor"]["value"] > 0
    # The ledger part fills a ledger, then counts what each first page issue 14 names costs.
    ledger = {row["measure"]: row for row in rows if row["area"] == "ledger"}
    for name in ("newest 50", "phone number, one month", "linkedObjectId, one month", "status failed, one month"):
        [trips] = [row for measure, row in ledger.items() if measure.startswith(f"round trips, first page: {name} (")]
        assert trips["value"] >= 1 and trips["target"] == "<= 3", trips
    assert "queries not a RowKey range of the licensee's partitions" in ledger
    assert any(measure.startswith("accept round trips, 1000 recipients") for measure in ledger)
    # Issue 30: the one-call accept's one storage call, counted against today's two.
    assert ledger["accept round trips, 1 recipient (no ledger: 2)"]["value"] == 2
    assert ledger["accept round trips, one-call path on, 1 recipient"]["value"] == 1
    # Accept to provider on both paths, interleaved on one dev host; storage transactions per message on each.
    latency = {row["measure"]: row for row in rows if row["area"] == "latency"}
    for path in ("two-call", "one-call"):
        assert latency[f"accept to provider, {path}: p99"]["value"] >= latency[f"accept to provider, {path}: p50"]["value"] > 0
    transactions = {row["measure"]: row for row in rows if row["area"] == "transactions"}
    assert transactions["  two-call: accept"]["value"] == 2 and transactions["  one-call: accept"]["value"] == 1
    assert transactions["storage transactions per message, one-call"]["value"] >= 1
    # Scheduled sends: every one went out, none before its time, and what each costs in storage.
    scheduled = {row["measure"]: row for row in rows if row["area"] == "scheduled"}
    assert scheduled["sent before its time"]["value"] == 0 and scheduled["sent before its time"]["met"] is True
    assert scheduled["40 due at once: late by, p99"]["value"] >= scheduled["40 due at once: late by, p50"]["value"] >= 0
    for step in ("accept a scheduled message", "each 7-day hop", "send it at its time"):
        assert scheduled[f"storage round trips: {step}"]["value"] >= 1
