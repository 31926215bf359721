"""Deployment settings read from the environment: DuckDB's memory limit for the platform's connections."""

from __future__ import annotations

import pytest

from lmdp_pipeline.spill import MEMORY_LIMIT_ENV, connect, spill_folder


def _limit(con) -> str:
    return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_the_deployments_memory_limit_caps_every_connection_that_sets_none(tmp_path, monkeypatch):
    with spill_folder(tmp_path) as spill:
        monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
        with connect(spill) as con:
            default = _limit(con)
        monkeypatch.setenv(MEMORY_LIMIT_ENV, "1500MB")
        with connect(spill) as con:
            assert _limit(con) == "1.3 GiB" != default, "DuckDB reports 1500 MB in GiB"
            assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == str(spill), "and spills to the private folder"
        with connect(spill, memory_limit="4GB") as con:
            assert _limit(con) == "3.7 GiB", "a connection's own limit wins"


def test_a_malformed_limit_fails_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with spill_folder(tmp_path) as spill, pytest.raises(ValueError, match=f"{MEMORY_LIMIT_ENV}='lots' is not a memory size"):
        connect(spill)
