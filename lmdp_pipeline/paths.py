"""Where the platform keeps its files: the one module that names every path under ``LMDP_HOME``.

Every folder lives under ``LMDP_HOME`` (default ``./var``) so that a test, a demo and
a production deployment differ only by one environment variable. Every other module
asks this one for a path instead of composing it, so a file name is decided once:
the warehouse month a build reads is the one ingestion wrote, the extract a retirement
deletes is the one the build published.

A project id is checked here, before it becomes part of any path: ``../../victim`` or
``P2026-001\\n`` never reach the file system.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "data_contracts"
DEFAULT_HOME = PROJECT_ROOT / "var"

PROJECT_ID_PATTERN = r"[A-Z0-9][A-Z0-9-]{2,31}"
DELIVERY_NAME = re.compile(r"(?P<register>[a-z_]+)_(?P<month>[0-9]{4}-[0-9]{2})\.csv")
_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
REQUEST_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PRIVATE_UMASK = 0o077

ZONES = ("landing", "approvals", "external", "warehouse", "quarantine", "extracts", "keys", "audit",
         "dictionary", "packages", "outputs", "locks")
"""The folders under LMDP_HOME; ``secure_home`` makes each private."""


class InvalidProjectId(ValueError):
    """A project id that is not ``[A-Z0-9][A-Z0-9-]{2,31}``; nothing was touched."""


def project_id(text: str) -> str:
    """``text`` if it is a project id, else InvalidProjectId (a whole-string match: no path, no newline)."""
    if not isinstance(text, str) or not _PROJECT_ID.fullmatch(text):
        shown = text if isinstance(text, str) and len(text) <= 40 and text.isprintable() else "the value given"
        raise InvalidProjectId(f"{shown!r} is not a project id: [A-Z0-9][A-Z0-9-]{{2,31}}, for example P2026-001")
    return text


class InvalidRequestId(ValueError):
    """An output request name that is not ``[A-Za-z0-9][A-Za-z0-9_-]{0,63}``; nothing was touched."""


def request_id(text: str) -> str:
    """``text`` if it names an output request (the file name without ``.yaml``), else InvalidRequestId."""
    if not isinstance(text, str) or not _REQUEST_ID.fullmatch(text):
        shown = text if isinstance(text, str) and len(text) <= 70 and text.isprintable() else "the value given"
        raise InvalidRequestId(f"{shown!r} is not a request name: letters, digits, - and _ (at most 64), for example tables-2026-11")
    return text


def warehouse_file(warehouse: Path, register: str, month: str) -> Path:
    """The Parquet file of one register and month in the identified zone."""
    return Path(warehouse) / register / f"{register}_{month}.parquet"


def warehouse_candidate(warehouse: Path, register: str, month: str, token: str) -> Path:
    """An ingestion's hidden candidate file, renamed over the month's file once accepted."""
    return Path(warehouse) / register / f".{register}_{month}.{token}.partial"


def warehouse_leftovers(warehouse: Path, register: str, month: str) -> list[Path]:
    """Candidate files of an ingestion of ``register`` and ``month`` that was killed before its rename."""
    return sorted((Path(warehouse) / register).glob(f".{register}_{month}.*.partial"))


def warehouse_glob(warehouse: Path, register: str) -> Path:
    """A DuckDB glob over every month of one register."""
    return Path(warehouse) / register / f"{register}_*.parquet"


def warehouse_month(path: Path) -> str:
    """The month (YYYY-MM) a warehouse file holds, from its name."""
    return Path(path).stem.rsplit("_", 1)[1]


def warehouse_months(warehouse: Path, register: str) -> list[str]:
    """The months of one register present in the warehouse, sorted."""
    return sorted(warehouse_month(p) for p in (Path(warehouse) / register).glob(f"{register}_*.parquet"))


EXPORT_FORMATS = ("dta", "sav", "parquet")
"""Stata, SPSS and Parquet: one file of each per delivered table in a project's exports folder."""
PACKAGE_MANIFEST = "SHA256SUMS"


def export_file(folder: Path, table: str, format_: str) -> Path:
    """One table in one format inside an exports folder (published or being written)."""
    return Path(folder) / f"{table}.{format_}"


def codebook_file(folder: Path, format_: str) -> Path:
    """The codebook inside an exports folder: ``html`` or ``md``."""
    return Path(folder) / f"codebook.{format_}"


def value_labels_file(folder: Path) -> Path:
    """Every code's number and label, for Stata and SPSS, inside an exports folder."""
    return Path(folder) / "value_labels.csv"


@dataclass(frozen=True)
class PlatformPaths:
    """The folder layout under one home directory."""

    home: Path

    @classmethod
    def from_env(cls) -> "PlatformPaths":
        return cls(Path(os.environ.get("LMDP_HOME", DEFAULT_HOME)).resolve())

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def approvals(self) -> Path:
        return self.home / "approvals"

    @property
    def external(self) -> Path:
        return self.home / "external"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def extracts(self) -> Path:
        return self.home / "extracts"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def audit(self) -> Path:
        return self.home / "audit"

    @property
    def dictionary(self) -> Path:
        return self.home / "dictionary"

    @property
    def packages(self) -> Path:
        return self.home / "packages"

    @property
    def outputs(self) -> Path:
        return self.home / "outputs"

    @property
    def locks(self) -> Path:
        return self.home / "locks"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME", self.home / "dagster")).resolve()

    # identified zone

    def delivery_file(self, register: str, month: str) -> Path:
        return self.landing / register / f"{register}_{month}.csv"

    def deliveries(self) -> list[tuple[Path, str, str]]:
        """(file, register, month) of every delivery in landing/ named as the source agency names them."""
        found = []
        for path in sorted(self.landing.glob("*/*.csv")):
            match = DELIVERY_NAME.fullmatch(path.name)
            if match and match["register"] == path.parent.name:
                found.append((path, match["register"], match["month"]))
        return found

    def warehouse_file(self, register: str, month: str) -> Path:
        return warehouse_file(self.warehouse, register, month)

    def warehouse_months(self, register: str) -> list[str]:
        return warehouse_months(self.warehouse, register)

    def frequency_folder(self, register: str, signature: str) -> Path:
        """Population frequencies of one register at one choice of quasi-identifier levels (``risk.frequencies``)."""
        return self.warehouse / ".frequencies" / register / signature

    def frequency_file(self, register: str, signature: str, month: str, stamp: str) -> Path:
        """One month of them; ``stamp`` names the state of the warehouse files they were counted from."""
        return self.frequency_folder(register, signature) / f"{month}.{stamp}.parquet"

    def frequency_files(self, register: str, signature: str, month: str) -> list[Path]:
        """Every kept count of that month, current or counted from an earlier state of the warehouse."""
        return sorted(self.frequency_folder(register, signature).glob(f"{month}.*.parquet"))

    def risk_search_file(self, project: str, digest: str) -> Path:
        """The lattice search's answer for one state of ``project``'s extract (``risk.memo``)."""
        return self.warehouse / ".risk-searches" / f"{project_id(project)}.{digest}.json"

    def risk_search_files(self, project: str) -> list[Path]:
        """Every kept answer of ``project``, current or from an earlier state of its extract."""
        return sorted((self.warehouse / ".risk-searches").glob(f"{project_id(project)}.*.json"))

    # approval zone

    def approval_file(self, project: str) -> Path:
        return self.approvals / f"{project_id(project)}.yaml"

    def approval_files(self) -> list[Path]:
        """Every file in approvals/ that could be an approval (``*.yaml``), valid name or not."""
        return sorted(self.approvals.glob("*.yaml"))

    def external_file(self, project: str, file: str) -> Path:
        return self.external / project_id(project) / file

    # project zone: everything published for a project, which retirement removes

    def extract_file(self, project: str) -> Path:
        return self.extracts / f"{project_id(project)}.duckdb"

    def extract_candidate(self, project: str, token: str) -> Path:
        """A build's hidden candidate file; ``extract_leftovers`` finds those a killed build left."""
        return self.extracts / f".{project_id(project)}.{token}.partial.duckdb"

    def extract_leftovers(self, project: str) -> list[Path]:
        """Candidate files (and their WAL) of earlier builds of ``project`` that never finished."""
        return sorted(self.extracts.glob(f".{project_id(project)}.*.partial.duckdb*"))

    def access_file(self, project: str) -> Path:
        """The list of accounts the remote-access environment mounts the extract for."""
        return self.extracts / f"{project_id(project)}.access.json"

    def exports_dir(self, project: str) -> Path:
        """The researchers' formats and the codebook (``exports.files`` names what is inside)."""
        return self.extracts / f"{project_id(project)}.exports"

    def exports_candidate(self, project: str, token: str) -> Path:
        """A hidden folder the exports are written in, renamed to ``exports_dir`` when complete."""
        return self.extracts / f".{project_id(project)}.{token}.exports.partial"

    def exports_set_aside(self, project: str, token: str) -> Path:
        """Where the previous exports folder is moved for the instant the new one takes its name."""
        return self.extracts / f".{project_id(project)}.{token}.exports.previous"

    def package_file(self, project: str) -> Path:
        return self.packages / f"{project_id(project)}.tar.age"

    def package_candidate(self, project: str, token: str) -> Path:
        return self.packages / f".{project_id(project)}.{token}.tar.age.partial"

    def export_leftovers(self, project: str) -> list[Path]:
        """Folders and packages that a killed export of ``project`` left under hidden names."""
        project = project_id(project)
        return sorted([*self.extracts.glob(f".{project}.*.exports.*"), *self.packages.glob(f".{project}.*.tar.age.partial")])

    def published(self, project: str) -> list[Path]:
        """Everything published for a project that retirement deletes (existing or not), and leftovers of exports."""
        return [self.extract_file(project), self.access_file(project), self.exports_dir(project), self.package_file(project),
                *self.export_leftovers(project)]

    # output checking: everything of a project's outputs stays under outputs/<project>/, which retirement keeps

    def outputs_dir(self, project: str) -> Path:
        return self.outputs / project_id(project)

    def output_request_file(self, project: str, request: str) -> Path:
        """A researcher's request for tables (and attached files), as the platform received it."""
        return self.outputs_dir(project) / "requests" / f"{request_id(request)}.yaml"

    def output_attachments_dir(self, project: str, request: str) -> Path:
        """The files a request attaches (figures, model results), beside the request."""
        return self.outputs_dir(project) / "requests" / request_id(request)

    def output_review_file(self, project: str, request: str) -> Path:
        """An output checker's decision on a request sent to review."""
        return self.outputs_dir(project) / "reviews" / f"{request_id(request)}.yaml"

    def output_checking_dir(self, project: str, request: str) -> Path:
        """The full evidence for output checkers (reasons per cell, earlier releases), with the files it describes."""
        return self.outputs_dir(project) / "checking" / request_id(request)

    def output_released_dir(self, project: str, request: str) -> Path:
        """What leaves the platform: tables, attached files, the evidence without reasons, checksums."""
        return self.outputs_dir(project) / "released" / request_id(request)

    def output_candidate_dir(self, final: Path, token: str) -> Path:
        """A hidden folder beside ``final`` (a checking or released folder), renamed into place when complete."""
        return final.parent / f".{final.name}.{token}.partial"

    def output_candidate_leftovers(self, project: str) -> list[Path]:
        """Candidate folders that a killed release left behind."""
        return sorted(self.outputs_dir(project).glob("*/.*.partial"))

    def output_decision_file(self, project: str, request: str) -> Path:
        """The latest decision on a request: status, reasons, the request's sha256."""
        return self.outputs_dir(project) / "decisions" / f"{request_id(request)}.json"

    def output_ledger_dir(self, project: str) -> Path:
        """One record per release of the project: its tables and the fingerprints of their published cells."""
        return self.outputs_dir(project) / "ledger"

    def output_ledger_record(self, project: str, sequence: int, request: str) -> Path:
        """The record of the project's ``sequence``-th release (numbered, so their order is their names' order)."""
        return self.output_ledger_dir(project) / f"{sequence:06d}-{request_id(request)}.json"

    def output_ledger_records(self, project: str) -> list[Path]:
        return sorted(self.output_ledger_dir(project).glob("[0-9]*-*.json"))

    def output_lock(self, project: str) -> Path:
        """Releases of one project happen one at a time, so each is checked against every earlier one."""
        return self.outputs_dir(project) / ".lock"

    def output_request_files(self) -> list[tuple[str, str, Path]]:
        """(project, request, file) of every request file named as a request, in every project's requests folder."""
        found = []
        for path in sorted(self.outputs.glob("*/requests/*.yaml")):
            project, request = path.parent.parent.name, path.stem
            if _PROJECT_ID.fullmatch(project) and _REQUEST_ID.fullmatch(request):
                found.append((project, request, path))
        return found

    def project_lock(self, project: str) -> Path:
        return self.locks / f"{project_id(project)}.lock"

    def delivery_lock(self, register: str, month: str) -> Path:
        return self.locks / "deliveries" / f"{register}_{month}.lock"

    def extracted_projects(self) -> list[str]:
        """Projects with an extract (or an access list) in extracts/, whatever their approval says."""
        names = {p.name.split(".", 1)[0] for p in self.extracts.glob("*.duckdb")}
        names |= {p.name.split(".", 1)[0] for p in self.extracts.glob("*.access.json")}
        return sorted(n for n in names if _PROJECT_ID.fullmatch(n))


def spill_dir(zone: Path, label: str, token: str) -> Path:
    """A private folder for DuckDB's temporary data, inside the zone whose data it holds."""
    return Path(zone) / ".spill" / f"{label}.{token}"  # no project id or register holds a dot


def spill_leftovers(zone: Path, label: str) -> list[Path]:
    """Spill folders with ``label`` that a killed process left behind."""
    return sorted((Path(zone) / ".spill").glob(f"{label}.*"))


def secure_home(paths: PlatformPaths) -> None:
    """Make LMDP_HOME, its zones and the Dagster home private (0700), tightening folders that exist already.

    The process umask is set private first, so every file and folder created afterwards,
    by this code, DuckDB, Dagster or SQLite, is readable by its owner only; zones that do
    not exist yet are created private when first needed.
    """
    os.umask(PRIVATE_UMASK)
    paths.home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    for folder in [paths.home, *(paths.home / zone for zone in ZONES), paths.dagster_home]:
        if folder.is_dir():
            os.chmod(folder, PRIVATE_DIR)
