"""The whole code location loads, and the dictionary asset materialises through Dagster."""

import subprocess
import sys

import dagster as dg

from assets import PlatformResource, data_dictionary
from lmdp_pipeline.paths import PROJECT_ROOT


def test_code_location_loads():
    from definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("publish_dictionary")
    assert dg.AssetKey("data_dictionary") in {a.key for a in defs.resolve_all_asset_specs()}


def test_dagster_cli_accepts_the_workspace(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "", "DAGSTER_HOME": str(tmp_path), "LMDP_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_data_dictionary_asset_materialises(tmp_path):
    home = tmp_path / "home"
    result = dg.materialize(
        [data_dictionary], resources={"platform": PlatformResource(home=str(home))}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    metadata = result.asset_materializations_for_node("data_dictionary")[0].metadata
    assert metadata["registers"].value == 9
    assert (home / "dictionary" / "html" / "individuals.html").is_file()
