"""Files a request attaches (figures, model results): the platform cannot recompute them, a person decides.

What the platform can check, it does, and a failure refuses the whole request:

- the file is a regular file beside the request (``requests/<request>/<file>``, never a
  link: a link to the extract would otherwise be released), at most
  ``MAX_ATTACHMENT_BYTES``, not in a format the policy blocks (vector graphics carry
  their data points);
- a model declares at least the policy's residual degrees of freedom (ACRO's
  ``safe_dof_threshold``);
- no pseudonym of the project's extract appears in it (a 16-hex-digit token looked up
  among every pseudonym column of the extract), nor a standalone run of 11 to 13 digits
  (an employer number, a matricule).

Everything else (what a figure shows, whether a model's cells are small) is the output
checker's: an attached file always sends its request to review.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..disclosure_policy import OutputPolicy
from ..files import sha256_of
from ..sql import quote_identifier as q
from .extract import ExtractDescription
from .request import Attachment

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
HEX_TOKEN = re.compile(rb"(?<![0-9A-Fa-f])[0-9A-Fa-f]{16}(?![0-9A-Fa-f])")
DIGIT_RUN = re.compile(rb"(?<![0-9.])[0-9]{11,13}(?![0-9])")


@dataclass
class AttachmentResult:
    name: str
    declared: Attachment
    path: Path
    sha256: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "fail" if self.problems else "review"


def _pseudonyms_found(con: duckdb.DuckDBPyConnection, description: ExtractDescription, tokens: set[str]) -> int:
    columns = [(c.table, c.name) for table in description.columns.values() for c in table.values() if c.pseudonym]
    if not tokens or not columns:
        return 0
    union = " UNION ".join(f"SELECT {q(column)} AS p FROM {q(table)}" for table, column in columns)
    return con.execute(f"SELECT count(*) FROM (SELECT unnest($tokens) AS t) WHERE t IN ({union})",
                       {"tokens": sorted(tokens)}).fetchone()[0]


def check_attachment(path: Path, name: str, declared: Attachment, policy: OutputPolicy, con: duckdb.DuckDBPyConnection,
                     description: ExtractDescription, field_name: str) -> AttachmentResult:
    result = AttachmentResult(name, declared, path)

    def problem(text: str) -> None:
        result.problems.append(f"{field_name}: {text}")

    try:
        info = path.lstat()
    except FileNotFoundError:
        problem(f"{path} does not exist: put the file beside the request")
        return result
    if not stat.S_ISREG(info.st_mode):
        problem(f"{path} is not a regular file (a link or a folder): attach the file itself")
        return result
    if info.st_size > MAX_ATTACHMENT_BYTES:
        problem(f"{path} is {info.st_size:,} bytes; an attached file is at most {MAX_ATTACHMENT_BYTES:,}")
        return result
    if path.suffix.lower() in policy.blocked_extensions:
        problem(f"{path.suffix} files carry the data points they draw: attach a raster image (PNG) or a PDF instead")
    if declared.kind == "model" and declared.residual_dof < policy.min_residual_dof:
        problem(f"the model has {declared.residual_dof} residual degrees of freedom; the policy asks for at least "
                f"{policy.min_residual_dof}")
    content = path.read_bytes()
    result.sha256 = sha256_of(path)
    tokens = {match.group().decode().lower() for match in HEX_TOKEN.finditer(content)}
    found = _pseudonyms_found(con, description, tokens)
    if found:
        problem(f"{path.name} contains {found} pseudonym(s) of the project's extract: no identifier leaves the platform")
    digits = DIGIT_RUN.search(content)
    if digits:
        problem(f"{path.name} contains a run of {len(digits.group())} digits at byte {digits.start()}, like an employer "
                "number or a matricule: remove it")
    return result
