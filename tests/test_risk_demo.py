"""``lmdp demo`` as a new user runs it: one example within the disclosure policy, one whose preview proposes a coarsening."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import duckdb
import pytest

from lmdp_pipeline.disclosure_policy import RULES
from lmdp_pipeline.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_the_demo_previews_each_example_s_risk_before_building_it(tmp_path):
    env = {**os.environ, "LMDP_HOME": str(tmp_path)}
    for name in ("DAGSTER_HOME", "LMDP_MASTER_KEY", "LMDP_MASTER_KEY_FILE"):
        env.pop(name, None)
    demo = subprocess.run([sys.executable, "-m", "lmdp_cli", "demo", "--persons", "300", "--months", "2024-01:2024-02"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    previews = dict(re.findall(r"(P2026-00\d): re-identification risk previewed from the warehouse\n(.*?)(?=\nproject_build)", demo.stdout, re.S))
    assert set(previews) == {"P2026-001", "P2026-002", "P2026-003"}
    assert "result: meets the policy" in previews["P2026-003"] and "suggestions" not in previews["P2026-003"]
    coarsening = previews["P2026-002"]
    assert "result: beyond the policy, risk accepted" in coarsening
    assert re.search(r"1\. individuals\.i_\w+: (group|not delivered)", coarsening), coarsening
    assert "approval lines: variables.individuals." in coarsening
    assert re.search(r"P2026-003\.duckdb: .*\n  re-identification risk: meets the policy \(0\.0% of persons", demo.stdout)
    assert re.search(r"P2026-002\.duckdb: .*\n  re-identification risk: beyond the policy, risk accepted", demo.stdout)
    for project in ("P2026-001", "P2026-002", "P2026-003"):
        with duckdb.connect(str(tmp_path / "extracts" / f"{project}.duckdb"), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM _risk WHERE section = 'verdict'").fetchone()[0] == len(RULES) + 1, "each rule and the result"
