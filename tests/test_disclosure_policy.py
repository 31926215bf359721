"""The disclosure policy file: the committed one loads, a malformed one is refused naming the field."""

from __future__ import annotations

import pytest
import yaml

from lmdp_pipeline.disclosure_policy import PolicyError, load_policy, policy_of


def test_the_committed_policy_loads_with_the_documented_defaults(contracts):
    policy = policy_of(contracts)
    assert policy.risk.k == 5 and policy.output.threshold == 10
    assert (policy.output.dominance_n, policy.output.dominance_k, policy.output.p_percent) == (2, 0.9, 0.1)


@pytest.mark.parametrize(("section", "field", "value", "words"), [
    ("risk", "k", 1, "risk.k"), ("output", "dominance_k", 1.5, "output.dominance_k"), ("output", "unknown", 1, "output.unknown"),
])
def test_a_malformed_policy_is_refused_naming_the_field(tmp_path, contracts, section, field, value, words):
    data = yaml.safe_load((contracts.directory / "disclosure_policy.yaml").read_text())
    data[section][field] = value
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match=words.replace(".", r"\.")):
        load_policy(path)
