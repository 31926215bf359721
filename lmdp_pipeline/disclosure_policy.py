"""The platform's disclosure-control policy, read from ``data_contracts/disclosure_policy.yaml``.

One versioned file holds the thresholds of both protections that measure what could
single a person out: the re-identification risk of an extract (``risk``) and the
checking of researchers' outputs (``output``). Every measure, check and evidence file
records the version it applied.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .contracts import ContractSet
from .contracts.loader import POLICY_NAME

PERSONS_AT_RISK = "persons_at_risk"
REIDENTIFICATION_RATE = "reidentification_rate"
RESPONDENTS_AT_RISK = "respondents_at_risk"
RULES = (PERSONS_AT_RISK, REIDENTIFICATION_RATE, RESPONDENTS_AT_RISK)
"""The risk policy's rules, by the names the verdict, ``_risk`` and an approval's ``risk_acceptance.up_to`` use."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskPolicy(_Strict):
    """What an extract may carry before its re-identification risk needs an accepted exception (docs/disclosure-risk.md).

    - ``k``: a person is at risk in a month when fewer than k persons of the extract
      share their combination of quasi-identifiers (k-anonymity);
    - ``l``: ... or when the persons of their combination hold fewer than l distinct
      values of a delivered restricted variable (l-diversity);
    - ``max_share_at_risk``: the largest share of the extract's persons at risk in any
      month of the period; the suggestions' suppression limit too (the records a
      generalisation tool would suppress are the ones counted at risk here);
    - ``max_reidentification_rate``: the largest expected number of re-identifications
      per person of a table in any month, each record counting 1/F, F its combination's
      frequency in the whole register that month (sdcMicro's global risk, counted, not
      modelled);
    - ``max_share_of_respondents_at_risk``: the largest share of the persons of the
      researchers' own files at risk (the same test as ``max_share_at_risk``). The
      researchers choose who is in their files and know every answer, so a respondent at
      risk is one they can find, not one an outsider might: an average over the whole
      extract would let them plant the persons they want to find.
    """

    k: int = Field(ge=2)
    l: int = Field(ge=1)  # noqa: E741 - the literature's name
    max_share_at_risk: float = Field(ge=0, le=1)
    max_reidentification_rate: float = Field(ge=0, le=1)
    max_share_of_respondents_at_risk: float = Field(ge=0, le=1)

    def limit(self, rule: str) -> float:
        """The largest figure ``rule`` allows (a share of persons, or re-identifications per person)."""
        return {PERSONS_AT_RISK: self.max_share_at_risk, REIDENTIFICATION_RATE: self.max_reidentification_rate,
                RESPONDENTS_AT_RISK: self.max_share_of_respondents_at_risk}[rule]


class OutputPolicy(_Strict):
    threshold: int = Field(ge=1)
    dominance_n: int = Field(ge=1)
    dominance_k: float = Field(gt=0, le=1)
    p_percent: float = Field(gt=0, lt=1)
    zeros_are_disclosive: bool
    min_residual_dof: int = Field(ge=0)
    blocked_extensions: list[Annotated[str, StringConstraints(pattern=r"^\.[a-z0-9]{1,10}$")]] = Field(default_factory=list)


class DisclosurePolicy(_Strict):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    risk: RiskPolicy
    output: OutputPolicy


class PolicyError(ValueError):
    """The policy file is missing or malformed; the message names the file and the field."""


@lru_cache(maxsize=4)
def load_policy(path: Path) -> DisclosurePolicy:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return DisclosurePolicy.model_validate(data)
    except (OSError, yaml.YAMLError) as error:
        raise PolicyError(f"{path}: cannot be read ({error.__class__.__name__})") from None
    except ValueError as error:
        raise PolicyError(f"{path}: {error}") from None


def policy_of(contracts: ContractSet) -> DisclosurePolicy:
    """The disclosure policy that sits with these contracts (``disclosure_policy.yaml`` in their folder).

    The only way the platform finds its policy: a deployment that points the platform at
    its own contracts folder gets its own thresholds for the risk and the output checks
    alike, never the repository's for one of them.
    """
    return load_policy(contracts.directory / f"{POLICY_NAME}.yaml")
