"""A protected table as it is published: the grid of values, suppressed cells marked, as CSV and XLSX.

One header line, then one line per row category and the total row last; the first
column holds the row labels, the last the row totals. A one-way table has one column,
named after its statistic. Suppressed cells read ``[c]`` (confidential); a structural
zero of a mean or median, which has no value, reads ``[z]`` (not applicable): the UK
Government Statistical Service's symbols. Every other cell is a number: persons (count),
a percentage of the table's persons with one decimal (share), or the statistic with two
decimals. The CSV layout is the one ACRO writes and SACRO Viewer highlights: cell
``[x, y]`` of the evidence is line x+2, field y+2.

Reading a CSV back (``read_csv_grid``) is how the blocking checks see exactly what would
be published.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .suppression import is_suppressed
from .tables import TOTAL, Cell, TableCells

SUPPRESSED = "[c]"
NOT_APPLICABLE = "[z]"
DECIMALS = {"count": 0, "share": 1, "sum": 2, "mean": 2, "median": 2}


@dataclass(frozen=True)
class Grid:
    """Header, row labels and values (numbers or a symbol) of a published table."""

    header: list[str]
    labels: list[str]
    values: list[list[float | int | str]]

    def lines(self) -> list[list]:
        return [self.header] + [[label, *row] for label, row in zip(self.labels, self.values)]


def value_of(cell: Cell, cells: TableCells, grand_persons: int) -> float | int | str:
    statistic = cells.table.statistic
    if is_suppressed(cell):
        return SUPPRESSED
    if statistic == "count":
        return cell.persons
    if statistic == "share":
        return round(100.0 * cell.persons / grand_persons, 1) if grand_persons else 0.0
    if statistic == "sum":
        return round(float(cell.total or 0.0), 2)
    if cell.observations == 0:
        return NOT_APPLICABLE
    if statistic == "mean":
        return round(float(cell.total) / cell.observations, 2)
    return round(float(cell.median), 2)


def grid(cells: TableCells) -> Grid:
    spec = cells.table.spec
    grand = cells.cells[(None, None)].persons
    cols = [*cells.cols, None] if cells.cols is not None else [None]
    if cells.cols is None:
        header = [spec.rows, spec.statistic if spec.value is None else f"{spec.statistic} of {spec.value}"]
    else:
        header = [f"{spec.rows} / {spec.columns}", *cells.cols, TOTAL]
    labels = [*cells.rows, TOTAL]
    values = [[value_of(cells.cells[(r, c)], cells, grand) for c in cols] for r in [*cells.rows, None]]
    return Grid(header, labels, values)


def csv_text(table: Grid, statistic: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    decimals = DECIMALS[statistic]
    for line in table.lines():
        writer.writerow([v if isinstance(v, str) else (f"{v:.{decimals}f}" if decimals else str(int(v))) for v in line])
    return buffer.getvalue()


def write_xlsx(path: Path, table: Grid, statistic: str, title: str, notes: list[str]) -> None:
    """The table on a sheet named after it (suppressed cells shaded), and a sheet of notes."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    shade, bold = PatternFill("solid", start_color="D9D9D9", end_color="D9D9D9"), Font(bold=True)
    number_format = "0" if DECIMALS[statistic] == 0 else "0." + "0" * DECIMALS[statistic]
    for r, line in enumerate(table.lines(), start=1):
        for c, value in enumerate(line, start=1):
            cell = sheet.cell(row=r, column=c, value=value)
            if r == 1 or c == 1:
                cell.font = bold
            elif value in (SUPPRESSED, NOT_APPLICABLE):
                cell.fill = shade
            else:
                cell.number_format = number_format
    sheet.freeze_panes = "B2"
    notes_sheet = workbook.create_sheet("notes")
    for r, note in enumerate(notes, start=1):
        notes_sheet.cell(row=r, column=1, value=note)
    workbook.properties.creator = "lmdp-pipeline output checking"
    workbook.save(path)


def read_csv_grid(path: Path) -> Grid:
    """A published CSV as the checks read it: header, labels, and values as text."""
    lines = list(csv.reader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    return Grid(lines[0], [line[0] for line in lines[1:]], [line[1:] for line in lines[1:]])
