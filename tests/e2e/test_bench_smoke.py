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
    assert {row["area"] for row in rows} == {"accept", "fan-out", "dispatch", "memory", "wire"}
    assert all(isinstance(row["value"], (int, float)) and row["value"] >= 0 for row in rows)
    assert (PROJECT_ROOT / "bench" / "throughput.png").stat().st_size > 0
