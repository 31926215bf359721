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

from .contracts.loader import POLICY_NAME
from .paths import CONTRACTS_DIR

POLICY_FILE = CONTRACTS_DIR / f"{POLICY_NAME}.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskPolicy(_Strict):
    k: int = Field(ge=2)
    max_share_at_risk: float = Field(ge=0, le=1)
    max_expected_reidentifications: float = Field(ge=0)
    l: int = Field(ge=1)  # noqa: E741 - the literature's name
    max_suppressed_share: float = Field(ge=0, le=1)


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
def load_policy(path: Path = POLICY_FILE) -> DisclosurePolicy:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return DisclosurePolicy.model_validate(data)
    except (OSError, yaml.YAMLError) as error:
        raise PolicyError(f"{path}: cannot be read ({error.__class__.__name__})") from None
    except ValueError as error:
        raise PolicyError(f"{path}: {error}") from None
