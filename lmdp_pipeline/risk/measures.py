"""Equivalence classes and their frequencies, in DuckDB SQL, for one choice of levels (a node of the lattice).

``Workspace.load`` reads the rows of every measured table once (``sources``) into
temporary tables keyed by integers, so that the work on millions of rows is joins and
counts on 64-bit ids, and combinations are spelled out only in small dictionaries:

- ``risk_e<i>``: every distinct combination of table ``i``'s quasi-identifiers (an
  *element*: one row's values) with its id ``e`` (a hash of the values);
- ``risk_kl<i>``: for tables with several rows per unit and month, every distinct
  multiset of elements (a *profile*) with its id;
- ``risk_s<i>``: one row per unit (person, or employer for ``enterprises``) and month
  with the id of its combination (``kid``: its element, or its profile) and the table
  rows it stands for; ``risk_sc<i>``: the same counted per month and combination
  (the sample frequencies f);
- ``risk_p<i>``: the combinations of the whole register counted per month (the
  population frequencies F, from ``frequencies``); for external data, whose only
  population is the researchers' file, F = f: the file holds at least the extract's
  rows, so this overstates the risk, never understates it;
- ``risk_pm``, ``risk_combos``, ``risk_cm``: the extract as a whole, one row per person
  and month with the combination of every person table's ids (``combo``);
- ``risk_sv<j>``: the values of each sensitive variable per person, month and combo;
- ``risk_respondents``: the persons of the researchers' own files (external data);
- ``risk_sr<i>``, ``risk_pr``, ``risk_svr<j>``: the rows of ``risk_s<i>``, ``risk_pm`` and
  ``risk_sv<j>`` in cells (month and combination at the approved levels) below k, or
  below l: the only rows a node's persons at risk can come from (``_rare``).

Every id is a hash checked free of collisions on the dictionary it indexes (the
measure stops rather than merge two classes). A node of the lattice maps each element
to its coarser values, each profile to its coarser multiset and each combo to its
coarser class, all on the dictionaries; the classes are then counted from
``risk_sc``/``risk_p``/``risk_cm``: a coarser combination is a function of the approved
one, so frequencies add up and the data are never read again. No Python loop touches a
row; only figures come back.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import duckdb

from .model import DROPPED, Levels, MeasuredTable, RiskModel

NO_TABLE = 0
"""The class id of a table every quasi-identifier of which is left out. It adds nothing to a combination of the
extract as a whole: a person with rows in it and a person without are told apart by nothing that is left."""


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
    respondents: int = 0  # persons of the researchers' own files
    respondents_at_risk: int = 0  # of them, below k or l in some month

    @property
    def share_at_risk(self) -> float:
        return self.persons_at_risk / self.persons if self.persons else 0.0

    @property
    def share_of_respondents_at_risk(self) -> float:
        return self.respondents_at_risk / self.respondents if self.respondents else 0.0

    def worst_rate(self, tables: list[str]) -> TableMonth | None:
        """The month and table (among ``tables``) with the highest expected re-identifications per unit."""
        candidates = [t for t in self.tables if t.table in tables and t.units]
        return max(candidates, key=lambda t: t.reidentification_rate, default=None)


class KeyCollision(Exception):
    """Two combinations hashed alike; the measure stops rather than merge two classes."""


def run(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> duckdb.DuckDBPyConnection:
    """Execute ``sql`` with the parameters it names (DuckDB refuses unused ones)."""
    return con.execute(sql, {name: value for name, value in (params or {}).items() if re.search(rf"\${name}\b", sql)})


def columns(table: MeasuredTable, prefix: str = "") -> str:
    return ", ".join(f"{prefix}q{i}" for i in range(len(table.qis)))


def element_id(table: MeasuredTable, prefix: str = "") -> str:
    """The id of one row's combination: a hash of its values."""
    return f"hash({columns(table, prefix)})"


class Workspace:
    """The measured rows of one extract on one DuckDB connection, and the figures at any node."""

    def __init__(self, con: duckdb.DuckDBPyConnection, model: RiskModel, k: int, l: int):  # noqa: E741
        self.con, self.model, self.k, self.l = con, model, k, l
        self.persons = [(i, t) for i, t in enumerate(model.tables) if t.about_persons]
        self.unit_counts: dict[int, int] = {}  # table -> its units over the period
        self.person_count = 0  # persons of the extract as a whole
        self.respondent_count = 0  # persons of the researchers' own files
        self.measured: list[int] = []  # tables with a quasi-identifier left at the mapped node

    def _distinct(self, relation: str, ids: str, what: str) -> None:
        """Stop when two different combinations of ``relation`` (a dictionary) share an id."""
        rows, distinct = self.con.execute(f"SELECT count(*), count(DISTINCT {ids}) FROM {relation}").fetchone()
        if rows != distinct:
            raise KeyCollision(f"{rows - distinct} {what} share a hash; the measure stops rather than merge classes")

    # --- loading ----------------------------------------------------------------------------------------

    def load(self, rows: dict[str, str], population: dict[str, str | None], sensitive: dict[str, str], params: dict) -> None:
        """``rows``: table -> SQL of its measured rows (``unit, month, q0..``); ``population``: table -> a table of the
        register's frequencies (``frequencies.counted``; None: external data); ``sensitive``: variable -> SQL
        ``unit, month, value``; ``params``: the SQL's parameters."""
        for i, table in enumerate(self.model.tables):
            self._load_sample(i, table, rows[table.name], params)
            self._load_population(i, table, population[table.name])
        self._load_persons()
        for j, variable in enumerate(self.model.sensitive):
            run(self.con, f"""CREATE OR REPLACE TEMP TABLE risk_sv{j} AS SELECT DISTINCT pm.unit, pm.month, pm.combo, v.value
                FROM ({sensitive[variable.name]}) v JOIN risk_pm pm ON pm.unit = v.unit AND pm.month = v.month""", params)
            self._rare(f"risk_svr{j}", f"risk_sv{j}", f"SELECT month, combo FROM risk_sv{j} GROUP BY ALL HAVING count(DISTINCT value) < $l",
                       "month, combo")

    def _rare(self, name: str, rows: str, cells: str, key: str) -> None:
        """``name``: the rows of ``rows`` in ``cells`` (``key`` columns), those below k (or l) at the approved levels.

        Every node is at or above the approved levels, so its classes are unions of these
        cells: a class below k holds only cells below k, a class with fewer than l values
        only cells with fewer. The persons at risk at any node are therefore found among
        these rows instead of by a scan of every person-month at every node of the search
        (at ten years of a whole population, 4 s a node became 0.3 s).
        """
        run(self.con, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {rows} SEMI JOIN ({cells}) USING ({key})",
            {"k": self.k, "l": self.l})

    def _load_sample(self, i: int, table: MeasuredTable, rows: str, params: dict) -> None:
        con = self.con
        run(con, f"CREATE OR REPLACE TEMP TABLE risk_es{i} AS SELECT DISTINCT {columns(table)} FROM ({rows})", params)
        if table.single:
            run(con, f"CREATE OR REPLACE TEMP TABLE risk_s{i} AS SELECT unit, month, 1 AS records, {element_id(table)} AS kid "
                     f"FROM ({rows})", params)
        else:  # most units have one row a month: a count and a minimum; lists only for the others
            run(con, f"""CREATE OR REPLACE TEMP TABLE risk_um{i} AS SELECT unit, month, count(*) AS records,
                [min({element_id(table)})] AS profile FROM ({rows}) GROUP BY unit, month""", params)
            run(con, f"""UPDATE risk_um{i} SET profile = several.profile FROM (SELECT unit, month, list_sort(list({element_id(table, 'r.')}))
                AS profile FROM ({rows}) r SEMI JOIN (SELECT unit, month FROM risk_um{i} WHERE records > 1) m USING (unit, month)
                GROUP BY unit, month) several WHERE several.unit = risk_um{i}.unit AND several.month = risk_um{i}.month""", params)
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_s{i} AS SELECT unit, month, records, hash(profile) AS kid FROM risk_um{i}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE risk_sc{i} AS SELECT month, kid, count(*) AS units, sum(records) AS records "
                    f"FROM risk_s{i} GROUP BY ALL")
        self._rare(f"risk_sr{i}", f"risk_s{i}", f"SELECT month, kid FROM risk_sc{i} WHERE units < $k", "month, kid")
        if not (table.about_persons and table.month):  # monthly person tables are counted with the extract as a whole
            self.unit_counts[i] = con.execute(f"SELECT count(DISTINCT unit) FROM risk_s{i}").fetchone()[0]

    def _load_population(self, i: int, table: MeasuredTable, counted: str | None) -> None:
        """Frequencies of the register under the same ids, and the dictionaries over the sample's and the register's."""
        con = self.con
        elements = f"SELECT {columns(table)} FROM risk_es{i}"
        profiles = f"SELECT DISTINCT kid, profile FROM (SELECT hash(profile) AS kid, profile FROM risk_um{i})" if not table.single else ""
        if counted is None:
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_p{i} AS SELECT month, kid, units AS frequency FROM risk_sc{i}")
        elif table.single:
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_p{i} AS SELECT month, {element_id(table)} AS kid, frequency FROM {counted}")
            elements += f" UNION SELECT {columns(table)} FROM {counted}"
        else:
            ids = f"list_sort(list_transform(profile, lambda x: {element_id(table, 'x.')}))"
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_p{i} AS SELECT month, hash({ids}) AS kid, frequency FROM {counted}")
            elements += f" UNION SELECT {columns(table, 'x.')} FROM (SELECT unnest(profile) AS x FROM {counted})"
            profiles = f"SELECT DISTINCT kid, profile FROM (SELECT hash(profile) AS kid, profile FROM risk_um{i} UNION ALL " \
                       f"SELECT hash({ids}), {ids} FROM {counted})"
        con.execute(f"CREATE OR REPLACE TEMP TABLE risk_e{i} AS SELECT {element_id(table)} AS e, * FROM ({elements})")
        self._distinct(f"risk_e{i}", "e", f"combinations of {table.name}")
        if not table.single:
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_kl{i} AS {profiles}")
            self._distinct(f"risk_kl{i}", "kid", f"multisets of {table.name}")

    def _load_persons(self) -> None:
        """The extract as a whole: every person and month with the ids of every person table (external ones: all months).

        Tables with a month are joined on person and month (a person absent from one that
        month has no id for it), tables without one (external data) on person alone.
        """
        monthly = [(i, t) for i, t in self.persons if t.month] or self.persons
        timeless = [(i, t) for i, t in self.persons if (i, t) not in monthly]
        names = ", ".join(f"k{i}" for i, _ in self.persons) or "k"
        if monthly:
            first, *others = monthly
            joined = f"(SELECT unit, month, kid AS k{first[0]} FROM risk_s{first[0]})" + "".join(
                f" FULL JOIN (SELECT unit, month, kid AS k{i} FROM risk_s{i}) USING (unit, month)" for i, _ in others)
            joined += "".join(f" LEFT JOIN (SELECT unit, kid AS k{i} FROM risk_s{i}) USING (unit)" for i, _ in timeless)
            selected = f"SELECT unit, month, {names} FROM {joined}"
        else:
            selected = "SELECT NULL AS unit, '' AS month, NULL::UBIGINT AS k WHERE false"
        con = self.con
        con.execute(f"CREATE OR REPLACE TEMP TABLE risk_pm AS SELECT unit, month, hash({names}) AS combo, {names} FROM ({selected})")
        con.execute(f"CREATE OR REPLACE TEMP TABLE risk_combos AS SELECT DISTINCT combo, {names} FROM risk_pm")
        self._distinct("risk_combos", "combo", "combinations of the extract")
        con.execute("CREATE OR REPLACE TEMP TABLE risk_cm AS SELECT month, combo, count(*) AS persons FROM risk_pm GROUP BY ALL")
        self._rare("risk_pr", "risk_pm", "SELECT month, combo FROM risk_cm WHERE persons < $k", "month, combo")
        counted = [i for i, t in self.persons if t.month]  # every unit-month of theirs is a row of risk_pm
        # one pass grouped by person rather than a distinct set per table: at ten years of a whole population the
        # person-months are hundreds of millions of rows, and each distinct set spills on its own
        present = "".join(f", bool_or(k{i} IS NOT NULL) AS in{i}" for i in counted)
        counts = ", ".join(["count(*)", *(f"count(*) FILTER (WHERE in{i})" for i in counted)])
        self.person_count, *per_table = con.execute(
            f"SELECT {counts} FROM (SELECT unit{present} FROM risk_pm WHERE unit IS NOT NULL GROUP BY unit)").fetchone()
        self.unit_counts |= dict(zip(counted, per_table))
        external = " UNION ".join(f"SELECT unit FROM risk_s{i}" for i, t in self.persons if not t.month)  # researchers' files
        con.execute(f"CREATE OR REPLACE TEMP TABLE risk_respondents AS {external or 'SELECT unit FROM risk_pm WHERE false'}")
        self.respondent_count = con.execute("SELECT count(*) FROM risk_respondents").fetchone()[0]

    def fingerprint(self) -> str:
        """A digest of every table loaded from the sources (rows counted and hashed in DuckDB, in no particular order):
        what a node's figures are computed from, so two workspaces with the same fingerprint give the same figures at
        every node. The other tables (``risk_pm`` and what is counted from it, ``risk_sc<i>``, the rare rows) are
        computed from these by this module, whose source the memo's digest names: hashing them again, a scan of every
        person-month, would add nothing."""
        tables = [f"risk_sv{j}" for j in range(len(self.model.sensitive))]
        for i, table in enumerate(self.model.tables):
            tables += [f"risk_s{i}", f"risk_p{i}", f"risk_e{i}"] + ([] if table.single else [f"risk_kl{i}"])
        digests = self.con.execute(" UNION ALL ".join(
            f"SELECT '{name}', count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {name} t" for name in tables)).fetchall()
        described = [sorted(digests), self.person_count, sorted(self.unit_counts.items()), self.k, self.l]
        return hashlib.sha256(repr(described).encode()).hexdigest()

    # --- one node -----------------------------------------------------------------------------------------

    def _map(self, i: int, levels: Levels) -> None:
        """``risk_n<i>(kid, nk)``: each combination of table ``i`` and its class at ``levels``."""
        table, con = self.model.tables[i], self.con
        chosen = [levels[qi.name] for qi in table.qis]
        coarse = ", ".join(f"{qi.at(level, f'q{p}')} AS q{p}" for p, (qi, level) in enumerate(zip(table.qis, chosen)))
        con.execute(f"CREATE OR REPLACE TEMP TABLE risk_m{i} AS SELECT e, {element_id(table)} AS ne, * EXCLUDE (e) "
                    f"FROM (SELECT e, {coarse} FROM risk_e{i})")
        self._distinct(f"(SELECT DISTINCT ne, {columns(table)} FROM risk_m{i})", "ne", f"coarser combinations of {table.name}")
        if all(level == DROPPED for level in chosen):
            dictionary = f"SELECT e AS kid FROM risk_e{i}" if table.single else f"SELECT kid FROM risk_kl{i}"
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_n{i} AS SELECT kid, {NO_TABLE}::UBIGINT AS nk FROM ({dictionary})")
        elif table.single:
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_n{i} AS SELECT e AS kid, ne AS nk FROM risk_m{i}")
        else:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE risk_n{i} AS SELECT kid, list_sort(list(m.ne)) AS coarse FROM
                (SELECT kid, unnest(profile) AS e FROM risk_kl{i}) JOIN risk_m{i} m USING (e) GROUP BY kid""")
            self._distinct(f"(SELECT DISTINCT hash(coarse) AS h, coarse FROM risk_n{i})", "h", f"coarser multisets of {table.name}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE risk_n{i} AS SELECT kid, hash(coarse) AS nk FROM risk_n{i}")

    def _table_classes(self, i: int) -> str:
        """SQL: the classes of table ``i`` at the mapped node: month, nk, units, records and the register's frequency."""
        return f"""SELECT s.month, s.nk, s.units, s.records, p.frequency FROM
            (SELECT month, n.nk, sum(units) AS units, sum(records) AS records FROM risk_sc{i} JOIN risk_n{i} n USING (kid) GROUP BY ALL) s
            LEFT JOIN (SELECT month, n.nk, sum(frequency) AS frequency FROM risk_p{i} JOIN risk_n{i} n USING (kid) GROUP BY ALL) p
            ON p.month = s.month AND p.nk = s.nk"""

    def _table_months(self, i: int) -> list[TableMonth]:
        """Figures per month (sums of fractions in a fixed order: the same extract always gives the same figures)."""
        name = self.model.tables[i].name
        rows = run(self.con, f"""SELECT month, sum(units), sum(records), count(*), min(units),
                count(*) FILTER (WHERE units < $k), coalesce(sum(units) FILTER (WHERE units < $k), 0),
                coalesce(sum(records) FILTER (WHERE units < $k), 0), count(*) FILTER (WHERE units = 1),
                count(*) FILTER (WHERE frequency = 1), coalesce(sum(units / frequency ORDER BY nk), 0), coalesce(max(1 / frequency), 0),
                count(*) FILTER (WHERE frequency IS NULL OR frequency < units)
            FROM ({self._table_classes(i)}) GROUP BY month ORDER BY month""", {"k": self.k}).fetchall()
        return [TableMonth(name, *row) for row in rows]

    def _units_at_risk(self, i: int) -> tuple[int, int]:
        """Units of table ``i``, and those in a class below k in some month (the longitudinal view)."""
        below = run(self.con, f"""SELECT count(DISTINCT unit) FROM risk_sr{i} SEMI JOIN (
                SELECT sc.month, sc.kid FROM risk_sc{i} sc JOIN risk_n{i} n USING (kid)
                JOIN ({self._table_classes(i)}) c ON c.month = sc.month AND c.nk = n.nk WHERE sc.units < $k AND c.units < $k
            ) small USING (month, kid)""", {"k": self.k}).fetchone()[0]
        return self.unit_counts[i], below

    def _classes(self) -> None:
        """``risk_node`` (combo -> class at the mapped node) and ``risk_classes`` (month, class, persons), the extract as a whole."""
        joins = " ".join(f"LEFT JOIN risk_n{i} n{i} ON n{i}.kid = c.k{i}" for i, _ in self.persons)
        ids = ", ".join(f"nullif(n{i}.nk, {NO_TABLE})" for i, _ in self.persons) or "NULL"
        named = ", ".join(f"nullif(n{i}.nk, {NO_TABLE}) AS nk{i}" for i, _ in self.persons) or "NULL AS nk"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE risk_node AS SELECT c.combo, hash({ids}) AS class, {named} FROM risk_combos c {joins}")
        self._distinct("(SELECT DISTINCT * EXCLUDE (combo) FROM risk_node)", "class", "coarser combinations of the extract")
        self.con.execute("""CREATE OR REPLACE TEMP TABLE risk_classes AS SELECT cm.month, n.class, sum(cm.persons) AS persons
            FROM risk_cm cm JOIN risk_node n USING (combo) GROUP BY ALL""")

    def _extract_months(self) -> list[ExtractMonth]:
        rows = run(self.con, """SELECT month, sum(persons), count(*), min(persons), count(*) FILTER (WHERE persons < $k),
                coalesce(sum(persons) FILTER (WHERE persons < $k), 0), count(*) FILTER (WHERE persons = 1)
            FROM risk_classes GROUP BY month ORDER BY month""", {"k": self.k}).fetchall()
        return [ExtractMonth(*row) for row in rows]

    @staticmethod
    def _below_k() -> str:
        return """SELECT DISTINCT unit FROM risk_pr SEMI JOIN (SELECT cm.month, cm.combo FROM risk_cm cm JOIN risk_node n USING (combo)
            JOIN risk_classes c ON c.month = cm.month AND c.class = n.class WHERE cm.persons < $k AND c.persons < $k)
            small USING (month, combo)"""

    @staticmethod
    def _l_classes(j: int) -> str:
        return f"SELECT sv.month, n.class, count(DISTINCT sv.value) AS l FROM risk_sv{j} sv JOIN risk_node n USING (combo) GROUP BY ALL"

    def _below_l(self, j: int) -> str:
        return f"""SELECT DISTINCT sv.unit, sv.month FROM risk_svr{j} sv JOIN risk_node n USING (combo)
            JOIN ({self._l_classes(j)}) c ON c.month = sv.month AND c.class = n.class WHERE c.l < $l"""

    def _diversity(self) -> list[Diversity]:
        found = []
        for j, variable in enumerate(self.model.sensitive):
            rows = run(self.con, f"""SELECT c.month, count(*), min(c.l), count(*) FILTER (WHERE c.l < $l),
                    (SELECT count(*) FROM ({self._below_l(j)}) b WHERE b.month = c.month)
                FROM ({self._l_classes(j)}) c GROUP BY c.month ORDER BY c.month""", {"l": self.l}).fetchall()
            found += [Diversity(variable.name, *row) for row in rows]
        return found

    def _at_risk(self) -> tuple[int, int, int, int, int]:
        """Persons of the extract-wide view; below k, below l, either, in some month; of the researchers' respondents, either."""
        below_l = " UNION ".join(f"SELECT unit FROM ({self._below_l(j)})" for j in range(len(self.model.sensitive)))
        below_l = below_l or "SELECT NULL AS unit WHERE false"
        below_k, below_l, either, respondents = run(self.con, f"""WITH k AS ({self._below_k()}), l AS ({below_l}),
                either AS (SELECT unit FROM k UNION SELECT unit FROM l)
            SELECT (SELECT count(*) FROM k), (SELECT count(DISTINCT unit) FROM l), (SELECT count(*) FROM either),
                   (SELECT count(*) FROM either SEMI JOIN risk_respondents USING (unit))""", {"k": self.k, "l": self.l}).fetchone()
        return self.person_count, below_k, below_l, either, respondents

    def node(self, levels: Levels) -> None:
        """Map every dictionary to ``levels``: what the figures below are computed at.

        A table whose every quasi-identifier is left out is not measured on its own any
        more, as a table without one never is: nothing in it can be matched.
        """
        for i in range(len(self.model.tables)):
            self._map(i, levels)
        self.measured = [i for i, t in enumerate(self.model.tables) if any(levels[qi.name] != DROPPED for qi in t.qis)]
        self._classes()

    def figures(self, levels: Levels) -> Figures:
        """Every measure at ``levels``."""
        self.node(levels)
        figures = Figures(dict(levels))
        for i in self.measured:
            figures.tables += self._table_months(i)
            figures.units_at_risk[self.model.tables[i].name] = self._units_at_risk(i)
        figures.extract = self._extract_months()
        figures.diversity = self._diversity()
        figures.persons, figures.persons_below_k, figures.persons_below_l, figures.persons_at_risk, figures.respondents_at_risk = \
            self._at_risk()
        figures.respondents = self.respondent_count
        return figures

    # --- what the lattice search asks ---------------------------------------------------------------------

    def shares_at_risk(self, limit: float) -> tuple[float, float] | None:
        """The shares of persons and of the researchers' respondents at risk at the mapped node, or None as soon as one
        month alone puts more than ``limit`` of the persons at risk.

        A person below k in a month is at risk over the period, so a month whose persons
        below k exceed the limit settles the node without the person-level join.
        """
        worst = run(self.con, """SELECT max(below / persons) FROM (SELECT month, sum(persons) AS persons,
            coalesce(sum(persons) FILTER (WHERE persons < $k), 0) AS below FROM risk_classes GROUP BY month)""", {"k": self.k}).fetchone()[0]
        if worst is not None and worst > limit:
            return None
        persons, _, _, at_risk, respondents_at_risk = self._at_risk()
        return (at_risk / persons if persons else 0.0,
                respondents_at_risk / self.respondent_count if self.respondent_count else 0.0)

    def worst_rate(self) -> float:
        """The highest expected re-identifications per person of any person table in any month, at the mapped node."""
        worst = 0.0
        for i in (i for i, _ in self.persons if i in self.measured):
            rate = self.con.execute(f"""SELECT max(expected / units) FROM (SELECT month, sum(units / frequency ORDER BY nk) AS expected,
                sum(units) AS units FROM ({self._table_classes(i)}) GROUP BY month)""").fetchone()[0]
            worst = max(worst, rate or 0.0)
        return worst

    def entropy(self, i: int, position: int, level: str) -> float:
        """Bits of information per unit-month of quasi-identifier ``position`` of table ``i`` at ``level``."""
        table = self.model.tables[i]
        if level == DROPPED:
            return 0.0
        value = table.qis[position].at(level, f"e.q{position}")
        elements = (f"risk_sc{i} s JOIN risk_e{i} e ON e.e = s.kid" if table.single else
                    f"risk_sc{i} s JOIN (SELECT kid, unnest(profile) AS element FROM risk_kl{i}) u USING (kid) "
                    f"JOIN risk_e{i} e ON e.e = u.element")
        return self.con.execute(f"""SELECT coalesce(log2(sum(n)) - sum(n * log2(n)) / sum(n), 0) FROM
            (SELECT {value} AS v, sum(s.units) AS n FROM {elements} GROUP BY ALL)""").fetchone()[0]
