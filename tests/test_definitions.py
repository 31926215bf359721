"""The whole code location loads, and the dictionary asset materialises through Dagster."""

import subprocess
import sys

import dagster as dg
import pytest

from assets import PlatformResource, data_dictionary
from lmdp_pipeline.contracts import load_contracts
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


def test_every_asset_and_check_tells_the_operator_what_it_is():
    """Group, kinds, owners and a description on every asset; a description on every check."""
    from definitions import defs

    specs = list(defs.resolve_all_asset_specs())
    assert len(specs) == 2 + 9 + 9 + 2 + 3 + 1, ("dictionary, audit log, nine registers, nine project tables, external and "
                                                 "extract, exports, codebook and package, outputs")
    for spec in specs:
        name = spec.key.to_user_string()
        assert spec.group_name in {"documentation", "registers", "projects", "outputs"}, name
        assert spec.kinds and spec.owners == ["team:data-engineering"], name
        assert spec.description and len(spec.description) > 40, name
    by_key = {s.key: s for s in specs}
    for contract in load_contracts():
        assert contract.description in by_key[dg.AssetKey(["registers", contract.register])].description
        assert contract.title in by_key[dg.AssetKey(["projects", contract.register])].description
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert len(checks) == 9 * 5 + 8 + 5, "registers, extract, output release"
    for key in checks:
        spec = defs.resolve_asset_graph().get_check_spec(key)
        assert spec.description and len(spec.description) > 20, key


def test_descriptions_keep_their_placeholders_in_the_ui():
    """The UI renders descriptions as Markdown: a bare <project> would vanish ("extracts/.duckdb")."""
    import re

    from definitions import defs

    texts = [s.description for s in defs.resolve_all_asset_specs()]
    texts += [defs.resolve_asset_graph().get_check_spec(k).description for k in defs.resolve_asset_graph().asset_check_keys]
    texts += [j.description or "" for j in defs.resolve_all_job_defs()]
    texts += [s.description or "" for s in defs.sensors] + [s.description or "" for s in defs.schedules]
    for text in texts:
        outside_code = re.sub(r"`[^`]*`", "", text)
        assert not re.search(r"<[a-z_]+>", outside_code), text


def test_the_platform_resource_cannot_be_pointed_elsewhere_from_run_config(tmp_path):
    """A launchpad edit of home or contracts_dir is refused: a run once wrote the dictionary to a home of its choosing."""
    from definitions import defs

    job = defs.resolve_job_def("publish_dictionary")
    with dg.instance_for_test() as instance:
        with pytest.raises(dg.DagsterInvalidConfigError, match='unexpected config entry "home"'):
            job.execute_in_process(instance=instance, run_config={"resources": {"platform": {"config": {"home": str(tmp_path)}}}})
    assert not (tmp_path / "dictionary").exists()
