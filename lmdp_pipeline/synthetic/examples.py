"""The three example approvals, the researchers' external file and two output requests that come with sample data.

They are written against the generated period so that ``lmdp demo`` can build every
project straight away. They show the outcomes of the re-identification risk measure
(docs/disclosure-risk.md) on a synthetic register of a few thousand persons: P2026-003
asks for little and meets the disclosure policy; P2026-001 (canton, occupation, a
survey's working hours) and P2026-002 (citizenship by country) do not, their previews
propose coarser levels, and their approvals accept the risk with compensating measures,
so they build with a warning. The figures they accept (``up_to``) are the largest there
are (every person at risk, one re-identification per person): the generator is run from
fifty persons up, and in a few hundred synthetic persons nearly everyone is unique.
A real acceptance names the figures its preview showed (docs/disclosure-risk.md). The
demo then decides on the requests: one asks for tables only (it is released), the other
attaches a model's results (it goes to an output checker). Their formats are described
in docs/projects.md and docs/output-checking.md.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import yaml

from ..files import sha256_of
from ..matricule import LENGTH
from ..paths import PlatformPaths
from ..period import Period
from .population import Population

SURVEY_PROJECT = "P2026-001"
SURVEY_FILE = "survey_2025.csv"


def example_approvals(period: Period, survey_sha256: str) -> dict[str, dict]:
    last_year = Period(max(period.first, period.last - 11), period.last)
    return {
        SURVEY_PROJECT: {
            "project": SURVEY_PROJECT,
            "title": "Return to work after long-term sickness",
            "institution": "LISER",
            "status": "approved",
            "approved_on": dt.date(2026, 11, 2),
            "expires_on": dt.date(2028, 12, 31),
            "approved_by": ["m.weber", "s.dupont"],
            "researchers": ["a.schmit", "j.ferreira"],
            "period": {"from": str(period.first), "to": str(period.last)},
            "population": [
                {"register": "affiliation", "where": {"a_status": {"in": ["employee"]}}},
                {"register": "individuals", "where": {"i_birth_date": {"between": [dt.date(1960, 1, 1), dt.date(1975, 12, 31)]}}},
            ],
            "variables": {
                "individuals": {"i_birth_date": "year", "i_sex": "default", "i_citizenship": "default", "i_residence": "canton"},
                "jobs": {"j_start": "month", "j_end": "month", "j_isco": "2digit", "j_employer": "pseudonym"},
                "absences": {"ab_start": "day", "ab_end": "day", "ab_reason": "default"},
            },
            "justifications": {
                "individuals.i_residence": "Canton-level regional analysis is the research question.",
                "absences": "Sickness absence is the outcome of the study.",
            },
            "external": {
                "survey_2025": {
                    "file": SURVEY_FILE,
                    "sha256": survey_sha256,
                    "id_column": "matricule",
                    "columns": {"q_health": {"type": "integer", "values": [1, 2, 3, 4, 5]},
                                "q_hours": {"type": "integer"}},
                }
            },
            "risk_acceptance": {
                "justification": "Canton of residence and occupation are the exposures the study compares; coarser levels "
                                 "cannot answer its question.",
                "compensating_measures": [
                    "no microdata leave the remote-access environment (no export of records)",
                    "outputs are checked at a threshold of 20 persons per cell instead of 10",
                    "the researchers sign the platform's undertaking not to re-identify anyone",
                ],
                "accepted_by": ["m.weber", "s.dupont"],
                "up_to": {"persons_at_risk": 1.0, "reidentification_rate": 1.0, "respondents_at_risk": 1.0},
                "output_threshold": 20,
            },
        },
        "P2026-002": {
            "project": "P2026-002",
            "title": "Health-care use and cash benefits of pensioners by citizenship",
            "institution": "University of Luxembourg",
            "status": "approved",
            "approved_on": dt.date(2026, 10, 15),
            "expires_on": dt.date(2028, 6, 30),
            "approved_by": ["m.weber", "l.hoffmann"],
            "researchers": ["c.muller"],
            "period": {"from": str(last_year.first), "to": str(last_year.last)},
            "population": [{"register": "affiliation", "where": {"a_status": {"eq": "pensioner"}}}],
            "variables": {
                "individuals": {"i_birth_date": "year", "i_sex": "default", "i_citizenship": "country"},
                "cash_benefits": {"cb_type": "default", "cb_amount": "default"},
                "benefits_in_kind": {"bk_date": "month", "bk_service": "group", "bk_amount": "default"},
            },
            "justifications": {
                "individuals.i_citizenship": "Health-care use differs by country of origin within the EU; the 7 groups hide it.",
                "benefits_in_kind": "Health-care use is the outcome of the study.",
            },
            "risk_acceptance": {
                "justification": "The comparison between EU countries of citizenship is what the study is funded for; the "
                                 "seven groups merge the countries it compares.",
                "compensating_measures": [
                    "no output crosses citizenship by country with birth year",
                    "outputs are checked at a threshold of 20 persons per cell instead of 10",
                    "no microdata leave the remote-access environment (no export of records)",
                ],
                "accepted_by": ["m.weber", "l.hoffmann"],
                "up_to": {"persons_at_risk": 1.0, "reidentification_rate": 1.0},
                "output_threshold": 20,
            },
        },
        "P2026-003": {
            "project": "P2026-003",
            "title": "Sickness cash benefits of employees by sex",
            "institution": "STATEC",
            "status": "approved",
            "approved_on": dt.date(2026, 11, 20),
            "expires_on": dt.date(2028, 12, 31),
            "approved_by": ["s.dupont", "l.hoffmann"],
            "researchers": ["p.reuter"],
            "period": {"from": str(last_year.first), "to": str(last_year.last)},
            "population": [{"register": "affiliation", "where": {"a_status": {"eq": "employee"}}}],
            "variables": {
                "individuals": {"i_sex": "default"},
                "cash_benefits": {"cb_type": "branch", "cb_days": "default"},
            },
        },
    }


def write_approvals(directory: Path, period: Period, survey: Path) -> list[Path]:
    """The example approvals, the survey's declaration naming the checksum of ``survey`` (the file they approve)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for project, approval in example_approvals(period, sha256_of(survey)).items():
        path = directory / f"{project}.yaml"
        path.write_text(yaml.safe_dump(approval, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written.append(path)
    return written


def write_survey(directory: Path, pop: Population, seed: int) -> Path:
    """A researcher's survey: mostly employees born 1960-1975, some others, two mistyped ids."""
    rng = np.random.default_rng([seed, 2025])
    born = pop.birth_date.astype("datetime64[Y]").astype(int) + 1970
    target = np.flatnonzero((born >= 1960) & (born <= 1975) & (pop.role == 2))
    others = np.flatnonzero((born < 1960) | (born > 1975))
    size = min(len(target), max(20, min(2000, pop.size // 50)))
    chosen = np.concatenate([
        rng.choice(target, size=size, replace=False),
        rng.choice(others, size=max(2, size // 10), replace=False),
    ])
    ids = pop.matricule[chosen].astype(f"U{LENGTH}")
    mistyped = rng.choice(len(ids), size=2, replace=False)
    for row in mistyped:  # a transposed pair of digits: the check digits catch it
        value = ids[row]
        ids[row] = value[:8] + value[9] + value[8] + value[10:] if value[8] != value[9] else value[:12] + str((int(value[12]) + 1) % 10)
    health = rng.choice([1, 2, 3, 4, 5], size=len(ids), p=[0.05, 0.1, 0.3, 0.35, 0.2])
    hours = rng.choice([20, 30, 38, 40, 45, 50], size=len(ids))
    path = directory / SURVEY_PROJECT / SURVEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["matricule,q_health,q_hours"] + [f"{i},{h},{w}" for i, h, w in zip(ids, health, hours)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TABLES_REQUEST = "absences-and-survey"
MODEL_REQUEST = "return-to-work-model"
MODEL_FILE = "return_to_work_logit.txt"


def example_requests(period: Period) -> dict[str, dict]:
    """Output requests of project P2026-001: tables only, and a model with a table."""
    last = str(period.last)
    return {
        TABLES_REQUEST: {
            "project": SURVEY_PROJECT,
            "requester": "a.schmit",
            "title": "Sickness absences and self-rated health",
            "tables": {
                "absences_by_reason_and_sex": {
                    "from": "absences", "with_individuals": True, "rows": "ab_reason", "columns": "i_sex", "statistic": "count",
                },
                "persons_by_canton": {
                    "from": "individuals", "rows": "i_residence", "statistic": "count", "filter": {"i_month": {"eq": last}},
                },
                "hours_by_health": {"from": "external_survey_2025", "rows": "q_health", "statistic": "mean", "value": "q_hours"},
            },
        },
        MODEL_REQUEST: {
            "project": SURVEY_PROJECT,
            "requester": "j.ferreira",
            "title": "Return to work: logistic model",
            "tables": {
                "jobs_by_occupation": {
                    "from": "jobs", "rows": "j_isco", "statistic": "count", "filter": {"j_month": {"eq": last}},
                },
            },
            "attachments": {
                MODEL_FILE: {
                    "kind": "model",
                    "description": "Logistic regression of return to work on age band, sex and self-rated health.",
                    "residual_dof": 412,
                },
            },
        },
    }


MODEL_RESULTS = """Logit regression: return to work within 6 months of a long sickness absence
Dependent variable: returned (0/1)          Residual degrees of freedom: 412

                     coef    std err        z    P>|z|
intercept          0.8412     0.2105    3.996    0.000
age 55 and over   -0.6120     0.1873   -3.268    0.001
female            -0.1544     0.1512   -1.021    0.307
health good        0.5231     0.1690    3.095    0.002
"""


def write_requests(paths: PlatformPaths, period: Period) -> list[Path]:
    """The example requests in ``outputs/P2026-001/requests/``, with the model's results beside the second."""
    written = []
    for request, content in example_requests(period).items():
        path = paths.output_request_file(SURVEY_PROJECT, request)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written.append(path)
    attached = paths.output_attachments_dir(SURVEY_PROJECT, MODEL_REQUEST) / MODEL_FILE
    attached.parent.mkdir(parents=True, exist_ok=True)
    attached.write_text(MODEL_RESULTS, encoding="utf-8")
    return written + [attached]
