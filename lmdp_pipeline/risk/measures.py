"""Equivalence classes and their frequencies, in DuckDB SQL, for one choice of levels (a node of the lattice).

``Workspace.load`` turns the rows of every measured table (``sources``) into temporary
tables on the connection, once:

- ``risk_s<i>``: one row per unit (person or employer) and month of table ``i``, with
  its combination (``key``) at the approved levels and the table rows it stands for;
- ``risk_sc<i>``: the same counted per month and combination (the sample frequencies f);
- ``risk_p<i>``: the combinations of the whole register counted per month (the
  population frequencies F); for external data, whose only population is the
  researchers' file, F = f: the file holds at least the extract's rows, so this
  overstates the risk, never understates it;
- ``risk_pm``, ``risk_combos``, ``risk_cm``: the extract as a whole, one row per person
  and month with the combination of every person table's key (``combo``, a hash of it,
  checked free of collisions);
- ``risk_sv<j>``: the values of each sensitive variable per person, month and combo.

Every node of the lattice is computed from these by grouping coarser keys, never by
reading the data again: a coarser combination is a function of the approved one, so
frequencies add up. No Python loop touches a row; only figures come back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from .model import DROPPED, Levels, MeasuredTable, RiskModel


@dataclass(frozen=True)
class TableMonth:
    """One table in one month (month ``""``: external data, the whole period)."""

    table: str
    month: str
    units: int  # persons (employers for enterprises)
    records: int  # table rows
    classes: int
    smallest: int
    classes_below_k: int
    units_below_k: int
    records_below_k: int
    sample_uniques: int  # units alone in their class in the extract
    population_uniques: int  # units alone in their class in the whole register
    expected_reidentifications: float  # sum over units of 1 / F
    highest_risk: float  # max 1 / F
    unmatched: int  # classes of the extract the register does not hold (F missing or below f): a build bug

    @property
    def reidentification_rate(self) -> float:
        return self.expected_reidentifications / self.units if self.units else 0.0


@dataclass(frozen=True)
class ExtractMonth:
    """The extract as a whole in one month: each person's combination across every table."""

    month: str
    persons: int
    classes: int
    smallest: int
    classes_below_k: int
    persons_below_k: int
    sample_uniques: int


@dataclass(frozen=True)
class Diversity:
    """l-diversity of one sensitive variable in one month, within the extract's classes."""

    variable: str
    month: str
    classes: int  # classes where someone holds a value
    smallest_l: int
    classes_below_l: int
    persons_below_l: int


@dataclass
class Figures:
    """Everything measured at one node."""

    levels: Levels
    tables: list[TableMonth] = field(default_factory=list)
    units_at_risk: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (units, units below k in some month)
    extract: list[ExtractMonth] = field(default_factory=list)
    diversity: list[Diversity] = field(default_factory=list)
    persons: int = 0  # persons of the extract-wide view
    persons_below_k: int = 0  # in some month
    persons_below_l: int = 0  # in some month
    persons_at_risk: int = 0  # below k or l in some month

    @property
    def share_at_risk(self) -> float:
        return self.persons_at_risk / self.persons if self.persons else 0.0

    def worst_rate(self, tables: list[str]) -> TableMonth | None:
        """The month and table (among ``tables``) with the highest expected re-identifications per unit."""
        candidates = [t for t in self.tables if t.table in tables and t.units]
        return max(candidates, key=lambda t: t.reidentification_rate, default=None)


class KeyCollision(Exception):
    """Two combinations hashed alike; the measure stops rather than merge two classes."""


def run(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> duckdb.DuckDBPyConnection:
    """Execute ``sql`` with the parameters it names (DuckDB refuses unused ones)."""
    return con.execute(sql, {name: value for name, value in (params or {}).items() if re.search(rf"\${name}\b", sql)})


def _fields(count: int, value: str = "q{i}") -> str:
    return ", ".join(f"q{i} := {value.format(i=i)}" for i in range(count))


def unit_months(table: MeasuredTable, rows: str) -> str:
    """One row per unit and month: its combination (a multiset for tables with several rows per unit and month)."""
    fields = _fields(len(table.qis))
    if table.single:
        return f"SELECT unit, month, 1 AS records, struct_pack({fields}) AS key FROM ({rows})"
    return (f"SELECT unit, month, count(*) AS records, struct_pack(profile := list_sort(list(struct_pack({fields})))) AS key "
            f"FROM ({rows}) GROUP BY unit, month")


def frequencies(table: MeasuredTable, rows: str) -> str:
    """Units per month and combination (single-row tables group plain columns first: cheaper than structs)."""
    if table.single:
        columns = ", ".join(f"q{i}" for i in range(len(table.qis)))
        return (f"SELECT month, struct_pack({_fields(len(table.qis))}) AS key, frequency FROM "
                f"(SELECT month, {columns}, count(*) AS frequency FROM ({rows}) GROUP BY ALL)")
    return f"SELECT month, key, count(*) AS frequency FROM ({unit_months(table, rows)}) GROUP BY ALL"


def node_key(table: MeasuredTable, levels: Levels, base: str) -> str:
    """SQL for the combination of ``table`` at ``levels``, from its key at the approved levels (``base``)."""
    chosen = [levels[qi.name] for qi in table.qis]
    if table.single:
        return "struct_pack(" + ", ".join(f"q{i} := {qi.at(level, f'{base}.q{i}')}" for i, (qi, level) in enumerate(zip(table.qis, chosen))) + ")"
    if all(level == DROPPED for level in chosen):
        return "NULL"  # nothing of the table is a quasi-identifier any more: it adds nothing to a combination
    inner = ", ".join(f"q{i} := {qi.at(level, f'x.q{i}')}" for i, (qi, level) in enumerate(zip(table.qis, chosen)))
    return f"list_sort(list_transform({base}.profile, lambda x: struct_pack({inner})))"


class Workspace:
    """The measured rows of one extract on one DuckDB connection, and the figures at any node."""

    def __init__(self, con: duckdb.DuckDBPyConnection, model: RiskModel, k: int, l: int):  # noqa: E741
        self.con, self.model, self.k, self.l = con, model, k, l
        self.persons = [(i, t) for i, t in enumerate(model.tables) if t.about_persons]

    # --- loading ----------------------------------------------------------------------------------------

    def load(self, rows: dict[str, str], population: dict[str, str | None], sensitive: dict[str, str], params: dict) -> None:
        """``rows``: table -> SQL of its measured rows; ``population``: table -> SQL of the register's rows (None:
        external data); ``sensitive``: variable name -> SQL ``unit, month, value``; ``params``: the SQL's parameters."""
        con = self.con
        for i, table in enumerate(self.model.tables):
            run(con, f"CREATE OR REPLACE TEMP TABLE risk_s{i} AS {unit_months(table, rows[table.name])}", params)
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_sc{i} AS SELECT month, key, count(*) AS units, sum(records) AS records "
                        f"FROM risk_s{i} GROUP BY ALL")
            source = population[table.name]
            counted = frequencies(table, source) if source else f"SELECT month, key, units AS frequency FROM risk_sc{i}"
            run(con, f"CREATE OR REPLACE TEMP TABLE risk_p{i} AS {counted}", params)
        self._load_persons()
        for j, variable in enumerate(self.model.sensitive):
            run(con, f"""CREATE OR REPLACE TEMP TABLE risk_sv{j} AS SELECT DISTINCT pm.unit, pm.month, pm.combo, v.value
                FROM ({sensitive[variable.name]}) v JOIN risk_pm pm ON pm.unit = v.unit AND pm.month = v.month""", params)

    def _load_persons(self) -> None:
        """The extract as a whole: every person and month with the keys of every person table (external ones: all months)."""
        monthly = [(i, t) for i, t in self.persons if t.month] or self.persons
        grain = " UNION ".join(f"SELECT unit, month FROM risk_s{i}" for i, _ in monthly) or "SELECT NULL AS unit, '' AS month WHERE false"
        joins = " ".join(
            f"LEFT JOIN risk_s{i} s{i} ON s{i}.unit = g.unit" + (f" AND s{i}.month = g.month" if t.month else "")
            for i, t in self.persons
        )
        key = f"struct_pack({', '.join(f't{i} := s{i}.key' for i, _ in self.persons)})" if self.persons else "NULL"
        con = self.con
        con.execute(f"CREATE OR REPLACE TEMP TABLE risk_pm_keys AS SELECT g.unit, g.month, {key} AS key FROM ({grain}) g {joins}")
        con.execute("CREATE OR REPLACE TEMP TABLE risk_combos AS SELECT hash(key) AS combo, key FROM (SELECT DISTINCT key FROM risk_pm_keys)")
        collisions = con.execute("SELECT count(*) - count(DISTINCT combo) FROM risk_combos").fetchone()[0]
        if collisions:
            raise KeyCollision(f"{collisions} combinations of quasi-identifiers share a hash; the measure stops rather than merge them")
        con.execute("CREATE OR REPLACE TEMP TABLE risk_pm AS SELECT unit, month, hash(key) AS combo FROM risk_pm_keys")
        con.execute("DROP TABLE risk_pm_keys")
        con.execute("CREATE OR REPLACE TEMP TABLE risk_cm AS SELECT month, combo, count(*) AS persons FROM risk_pm GROUP BY ALL")

    # --- one node -----------------------------------------------------------------------------------------

    def table_classes(self, i: int, levels: Levels) -> str:
        """SQL: the classes of table ``i`` at ``levels``: month, key, units, records and the register's frequency."""
        key = node_key(self.model.tables[i], levels, "key")
        return f"""SELECT s.month, s.key, s.units, s.records, p.frequency FROM
            (SELECT month, {key} AS key, sum(units) AS units, sum(records) AS records FROM risk_sc{i} GROUP BY ALL) s
            LEFT JOIN (SELECT month, {key} AS key, sum(frequency) AS frequency FROM risk_p{i} GROUP BY ALL) p
            ON p.month = s.month AND p.key IS NOT DISTINCT FROM s.key"""

    def table_months(self, i: int, levels: Levels) -> list[TableMonth]:
        name = self.model.tables[i].name
        rows = self.con.execute(f"""SELECT month, sum(units), sum(records), count(*), min(units),
                count(*) FILTER (WHERE units < $k), coalesce(sum(units) FILTER (WHERE units < $k), 0),
                coalesce(sum(records) FILTER (WHERE units < $k), 0), count(*) FILTER (WHERE units = 1),
                count(*) FILTER (WHERE frequency = 1), coalesce(sum(units / frequency), 0), coalesce(max(1 / frequency), 0),
                count(*) FILTER (WHERE frequency IS NULL OR frequency < units)
            FROM ({self.table_classes(i, levels)}) GROUP BY month ORDER BY month""", {"k": self.k}).fetchall()
        return [TableMonth(name, *row) for row in rows]

    def units_at_risk(self, i: int, levels: Levels) -> tuple[int, int]:
        """Units of table ``i``, and those in a class below k in some month (the longitudinal view)."""
        key = node_key(self.model.tables[i], levels, "s.key")
        return self.con.execute(f"""SELECT count(DISTINCT s.unit), count(DISTINCT s.unit) FILTER (WHERE c.units < $k)
            FROM risk_s{i} s JOIN ({self.table_classes(i, levels)}) c ON c.month = s.month AND c.key IS NOT DISTINCT FROM {key}""",
                                {"k": self.k}).fetchone()

    def _classes(self, levels: Levels) -> None:
        """``risk_node`` (combo -> class at ``levels``) and ``risk_classes`` (month, class, persons) of the extract as a whole."""
        fields = ", ".join(f"t{i} := {node_key(t, levels, f'key.t{i}')}" for i, t in self.persons)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE risk_node AS SELECT combo, struct_pack({fields or 'none := NULL'}) AS class FROM risk_combos")
        self.con.execute("""CREATE OR REPLACE TEMP TABLE risk_classes AS SELECT cm.month, n.class, sum(cm.persons) AS persons
            FROM risk_cm cm JOIN risk_node n USING (combo) GROUP BY ALL""")

    def extract_months(self) -> list[ExtractMonth]:
        rows = self.con.execute("""SELECT month, sum(persons), count(*), min(persons), count(*) FILTER (WHERE persons < $k),
                coalesce(sum(persons) FILTER (WHERE persons < $k), 0), count(*) FILTER (WHERE persons = 1)
            FROM risk_classes GROUP BY month ORDER BY month""", {"k": self.k}).fetchall()
        return [ExtractMonth(*row) for row in rows]

    def _below_k(self) -> str:
        return """SELECT DISTINCT pm.unit FROM risk_pm pm JOIN risk_node n USING (combo)
            JOIN risk_classes c ON c.month = pm.month AND c.class IS NOT DISTINCT FROM n.class WHERE c.persons < $k"""

    def _l_classes(self, j: int) -> str:
        return f"""SELECT sv.month, n.class, count(DISTINCT sv.value) AS l FROM risk_sv{j} sv JOIN risk_node n USING (combo) GROUP BY ALL"""

    def _below_l(self, j: int) -> str:
        return f"""SELECT DISTINCT sv.unit, sv.month FROM risk_sv{j} sv JOIN risk_node n USING (combo)
            JOIN ({self._l_classes(j)}) c ON c.month = sv.month AND c.class IS NOT DISTINCT FROM n.class WHERE c.l < $l"""

    def diversity(self) -> list[Diversity]:
        found = []
        for j, variable in enumerate(self.model.sensitive):
            rows = self.con.execute(f"""SELECT c.month, count(*), min(c.l), count(*) FILTER (WHERE c.l < $l),
                    (SELECT count(*) FROM ({self._below_l(j)}) b WHERE b.month = c.month)
                FROM ({self._l_classes(j)}) c GROUP BY c.month ORDER BY c.month""", {"l": self.l}).fetchall()
            found += [Diversity(variable.name, *row) for row in rows]
        return found

    def _at_risk(self) -> tuple[int, int, int, int]:
        """Persons of the extract-wide view; below k, below l, either, in some month."""
        below_l = " UNION ".join(f"SELECT unit FROM ({self._below_l(j)})" for j in range(len(self.model.sensitive)))
        below_l = below_l or "SELECT NULL AS unit WHERE false"
        return run(self.con, f"""WITH k AS ({self._below_k()}), l AS ({below_l})
            SELECT (SELECT count(DISTINCT unit) FROM risk_pm), (SELECT count(*) FROM k), (SELECT count(DISTINCT unit) FROM l),
                   (SELECT count(*) FROM (SELECT unit FROM k UNION SELECT unit FROM l))""", {"k": self.k, "l": self.l}).fetchone()

    def figures(self, levels: Levels) -> Figures:
        """Every measure at ``levels``."""
        figures = Figures(dict(levels))
        for i, table in enumerate(self.model.tables):
            figures.tables += self.table_months(i, levels)
            figures.units_at_risk[table.name] = self.units_at_risk(i, levels)
        self._classes(levels)
        figures.extract = self.extract_months()
        figures.diversity = self.diversity()
        figures.persons, figures.persons_below_k, figures.persons_below_l, figures.persons_at_risk = self._at_risk()
        return figures

    # --- what the lattice search asks ---------------------------------------------------------------------

    def share_at_risk(self, levels: Levels, limit: float) -> float | None:
        """The share of persons at risk at ``levels``, or None as soon as one month alone exceeds ``limit``.

        A person below k in a month is at risk over the period, so a month whose persons
        below k exceed the limit settles the node without the person-level join.
        """
        self._classes(levels)
        worst = self.con.execute("""SELECT max(below / persons) FROM (SELECT month, sum(persons) AS persons,
            coalesce(sum(persons) FILTER (WHERE persons < $k), 0) AS below FROM risk_classes GROUP BY month)""", {"k": self.k}).fetchone()[0]
        if worst is not None and worst > limit:
            return None
        persons, _, _, at_risk = self._at_risk()
        return at_risk / persons if persons else 0.0

    def worst_rate(self, levels: Levels) -> float:
        """The highest expected re-identifications per person of any person table in any month, at ``levels``."""
        worst = 0.0
        for i, table in enumerate(self.model.tables):
            if table.about_persons:
                rate = self.con.execute(f"""SELECT max(expected / units) FROM (SELECT month, sum(units / frequency) AS expected,
                    sum(units) AS units FROM ({self.table_classes(i, levels)}) GROUP BY month)""").fetchone()[0]
                worst = max(worst, rate or 0.0)
        return worst

    def entropy(self, i: int, position: int, level: str) -> float:
        """Bits of information per unit-month of quasi-identifier ``position`` of table ``i`` at ``level``."""
        table = self.model.tables[i]
        qi = table.qis[position]
        if level == DROPPED:
            return 0.0
        if table.single:
            value = qi.at(level, f"key.q{position}")
            source = f"risk_s{i}"
        else:
            value = qi.at(level, f"x.q{position}")
            source = f"(SELECT unnest(key.profile) AS x FROM risk_s{i})"
        return self.con.execute(f"SELECT coalesce(entropy({value}), 0) FROM {source}").fetchone()[0]
