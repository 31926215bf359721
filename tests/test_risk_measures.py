"""The risk measures on populations small enough to count by hand, and against a second implementation in plain Python.

The workspace is fed rows written here (no warehouse, no contracts): what is tested
is the arithmetic of classes, sample and population frequencies, l-diversity and the
longitudinal view, each compared with numbers worked out by hand or with a Counter.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import duckdb
import pytest

from lmdp_pipeline.disclosure_policy import PERSONS_AT_RISK, REIDENTIFICATION_RATE, RiskPolicy
from lmdp_pipeline.risk.frequencies import count
from lmdp_pipeline.risk.measures import KeyCollision, Workspace
from lmdp_pipeline.risk.model import AS_DECLARED, DROPPED, MeasuredTable, QuasiIdentifier, RiskModel, Sensitive
from lmdp_pipeline.risk.verdict import breaches


def qis(table: str, count: int) -> tuple[QuasiIdentifier, ...]:
    return tuple(QuasiIdentifier(table, f"c{i}", AS_DECLARED) for i in range(count))


def load_rows(con, name: str, rows: list[tuple], width: int) -> str:
    """A table ``name(unit, month, q0..)`` holding ``rows``; returns the SQL that reads it."""
    columns = ", ".join(f"q{i} VARCHAR" for i in range(width))
    con.execute(f"CREATE TABLE {name} (unit VARCHAR, month VARCHAR, {columns})")
    if rows:
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * (width + 2))})", rows)
    return f"SELECT * FROM {name}"


def workspace(con, tables, sample, population, sensitive=(), sensitive_rows=None, k=2, l=2):  # noqa: E741
    model = RiskModel(tuple(tables), tuple(sensitive))
    space = Workspace(con, model, k, l)
    rows = {t.name: load_rows(con, f"sample_{t.name}", sample[t.name], len(t.qis)) for t in tables}
    counted = {t.name: (count(con, t, load_rows(con, f"population_{t.name}", population[t.name], len(t.qis)), f"counted_{t.name}", {})
                        if t.name in population else None) for t in tables}
    values = {}
    for s in sensitive:
        con.execute(f"CREATE TABLE values_{s.table} (unit VARCHAR, month VARCHAR, value VARCHAR)")
        con.executemany(f"INSERT INTO values_{s.table} VALUES (?, ?, ?)", sensitive_rows[s.name])
        values[s.name] = f"SELECT * FROM values_{s.table}"
    space.load(rows, counted, values, {})
    return space, model


# --- by hand ----------------------------------------------------------------------------------------------

PEOPLE = MeasuredTable("people", "person_id", "month", qis("people", 2))
JAN, FEB = "2024-01", "2024-02"
POPULATION = [  # month, person, sex, birth year
    (JAN, "p1", "1", "1960"), (JAN, "p2", "1", "1960"), (JAN, "p3", "1", "1960"), (JAN, "p4", "2", "1960"),
    (JAN, "p5", "2", "1961"), (JAN, "p6", "2", "1961"), (JAN, "p7", "1", "1962"),
    (FEB, "p1", "1", "1960"), (FEB, "p2", "1", "1960"), (FEB, "p4", "1", "1960"), (FEB, "p5", "1", "1960"),
]
SAMPLE = {"p1", "p2", "p4", "p5"}


def by_hand(con, **options):
    population = [(p, m, a, b) for m, p, a, b in POPULATION]
    return workspace(con, [PEOPLE], {"people": [r for r in population if r[0] in SAMPLE]}, {"people": population}, **options)


def test_classes_frequencies_and_uniques_counted_by_hand():
    """January: {p1, p2} in (1, 1960) with 3 in the register; p4 alone in (2, 1960), alone in the register too;
    p5 alone in (2, 1961), which p6 (not in the extract) shares: a sample unique that is not a population unique.
    p7 is unique in the register but not in the extract: it counts nowhere."""
    with duckdb.connect() as con:
        space, model = by_hand(con)
        figures = space.figures(model.approved)
    january, february = figures.tables
    assert (january.units, january.records, january.classes, january.smallest) == (4, 4, 3, 1)
    assert (january.classes_below_k, january.units_below_k, january.records_below_k) == (2, 2, 2)
    assert (january.sample_uniques, january.population_uniques) == (2, 1)
    assert january.expected_reidentifications == pytest.approx(2 / 3 + 1 / 1 + 1 / 2)
    assert january.highest_risk == 1.0 and january.unmatched == 0
    assert january.reidentification_rate == pytest.approx((2 / 3 + 1 + 1 / 2) / 4)
    assert (february.units, february.classes, february.classes_below_k, february.sample_uniques) == (4, 1, 0, 0)
    assert february.expected_reidentifications == pytest.approx(4 / 4)


def test_a_person_below_k_in_one_month_is_at_risk_over_the_period():
    with duckdb.connect() as con:
        space, model = by_hand(con)
        figures = space.figures(model.approved)
    assert figures.units_at_risk["people"] == (4, 2)
    assert [(e.month, e.persons, e.persons_below_k) for e in figures.extract] == [(JAN, 4, 2), (FEB, 4, 0)]
    assert (figures.persons, figures.persons_below_k, figures.persons_at_risk) == (4, 2, 2) and figures.share_at_risk == 0.5


def test_a_larger_k_puts_more_persons_at_risk():
    with duckdb.connect() as con:
        space, model = by_hand(con, k=3)
        figures = space.figures(model.approved)
    assert figures.persons_at_risk == 4, "in January no class of the extract has three persons"


def test_each_rule_of_the_policy_is_broken_on_its_own():
    """By hand: half the persons at risk (January), and January's rate (2/3 + 1 + 1/2) / 4 = 0.54 re-identifications each."""
    with duckdb.connect() as con:
        space, model = by_hand(con)
        figures = space.figures(model.approved)

    def broken(share: float, rate: float) -> list[str]:
        return [b.rule for b in breaches(figures, model, RiskPolicy(k=2, l=1, max_share_at_risk=share, max_reidentification_rate=rate, max_share_of_respondents_at_risk=0))]

    assert broken(0.5, 0.55) == []
    assert broken(0.49, 0.55) == [PERSONS_AT_RISK]
    assert broken(0.5, 0.54) == [REIDENTIFICATION_RATE]
    assert broken(0.49, 0.54) == [PERSONS_AT_RISK, REIDENTIFICATION_RATE]
    [rate] = breaches(figures, model, RiskPolicy(k=2, l=1, max_share_at_risk=1, max_reidentification_rate=0.5, max_share_of_respondents_at_risk=0))
    assert rate.text.startswith("people in 2024-01: 2.2 expected re-identifications among 4 persons"), rate.text


def test_the_lattice_shortcut_counts_a_class_of_exactly_k_as_safe():
    """January's class {p1, p2} has k=2 persons: not at risk. Only p4 and p5 are, half the persons."""
    with duckdb.connect() as con:
        space, model = by_hand(con)
        space.node(model.approved)
        assert space.shares_at_risk(0.6) == pytest.approx((0.5, 0.0))
        assert space.shares_at_risk(0.4) is None, "January alone settles it"


def test_coarser_levels_merge_classes_in_the_sample_and_the_register_alike():
    """Without the birth year every January class is a sex: (1) p1 p2 in the extract, 4 in the register; (2) p4 p5, 3."""
    with duckdb.connect() as con:
        space, model = by_hand(con)
        figures = space.figures({"people.c0": AS_DECLARED, "people.c1": DROPPED})
    january = figures.tables[0]
    assert (january.classes, january.classes_below_k, january.sample_uniques) == (2, 0, 0)
    assert january.expected_reidentifications == pytest.approx(2 / 4 + 2 / 3)
    assert figures.persons_at_risk == 0


def test_a_class_the_register_does_not_hold_is_an_integrity_problem():
    with duckdb.connect() as con:
        population = [(p, m, a, b) for m, p, a, b in POPULATION]
        sample = [r for r in population if r[0] in SAMPLE] + [("p9", JAN, "9", "1999")]
        space, model = workspace(con, [PEOPLE], {"people": sample}, {"people": population})
        january = space.figures(model.approved).tables[0]
    assert january.unmatched == 1


HOUSEHOLDS = MeasuredTable("links", "person_id", "month", qis("links", 1), single=False)


def test_several_rows_per_person_and_month_are_one_multiset():
    """Household links: p1 has a spouse and two children, p2 a spouse and one child, p3 a spouse and two children.
    By row, every person shares 'child' with others; by multiset, p2 is alone."""
    links = [("p1", JAN, "spouse"), ("p1", JAN, "child"), ("p1", JAN, "child"), ("p2", JAN, "spouse"), ("p2", JAN, "child"),
             ("p3", JAN, "child"), ("p3", JAN, "spouse"), ("p3", JAN, "child"), ("p4", JAN, "child"), ("p4", JAN, "spouse")]
    with duckdb.connect() as con:
        space, model = workspace(con, [HOUSEHOLDS], {"links": links}, {"links": links})
        january = space.figures(model.approved).tables[0]
    assert (january.units, january.records, january.classes) == (4, 10, 2)
    assert (january.units_below_k, january.records_below_k) == (0, 0), "{spouse, child}: p2, p4; {spouse, child, child}: p1, p3"
    with duckdb.connect() as con:
        space, model = workspace(con, [HOUSEHOLDS], {"links": links[:8]}, {"links": links})
        january = space.figures(model.approved).tables[0]
    assert (january.units, january.classes_below_k, january.units_below_k, january.records_below_k) == (3, 1, 1, 2)
    assert january.expected_reidentifications == pytest.approx(1 / 2 + 2 / 2)


SURVEY = MeasuredTable("external_survey", "person_id", None, qis("external_survey", 1))
DIAGNOSES = MeasuredTable("absences", "person_id", "month", ())


def test_l_diversity_within_the_extract_classes():
    """(1, 1960) in January: p1 and p2, both chapter V: l = 1, both below l; p4 alone in its class: below k too."""
    diagnosis = Sensitive("absences", "ab_diagnosis", "month", None, "chapter")
    values = {diagnosis.name: [("p1", JAN, "V"), ("p2", JAN, "V"), ("p4", JAN, "IX"), ("p1", FEB, "V"), ("p2", FEB, "XIX")]}
    with duckdb.connect() as con:
        space, model = by_hand(con, sensitive=[diagnosis], sensitive_rows=values)
        figures = space.figures(model.approved)
    january, february = figures.diversity
    assert (january.month, january.classes, january.smallest_l, january.classes_below_l, january.persons_below_l) == (JAN, 2, 1, 2, 3)
    assert (february.classes, february.smallest_l, february.classes_below_l, february.persons_below_l) == (1, 2, 0, 0)
    assert (figures.persons_below_k, figures.persons_below_l, figures.persons_at_risk) == (2, 3, 4)


def test_external_data_count_for_the_whole_period_and_their_file_is_their_population():
    survey = [("p1", "", "20"), ("p2", "", "20"), ("p4", "", "45")]
    with duckdb.connect() as con:
        population = [(p, m, a, b) for m, p, a, b in POPULATION]
        space, model = workspace(con, [PEOPLE, SURVEY], {"people": [r for r in population if r[0] in SAMPLE], "external_survey": survey},
                                 {"people": population})
        figures = space.figures(model.approved)
    [survey_figures] = [t for t in figures.tables if t.table == "external_survey"]
    assert (survey_figures.month, survey_figures.units, survey_figures.classes, survey_figures.units_below_k) == ("", 3, 2, 1)
    assert survey_figures.expected_reidentifications == pytest.approx(2 / 2 + 1 / 1), "F = f: the file is the population"
    february = figures.extract[1]
    assert (february.persons, february.classes, february.persons_below_k) == (4, 3, 2), "p4 and p5 are told apart by the survey"


def test_a_hash_collision_stops_the_measure(monkeypatch):
    from lmdp_pipeline.risk import measures

    monkeypatch.setattr(measures, "element_id", lambda table, prefix="": "7::UBIGINT")  # every combination hashes alike
    with duckdb.connect() as con, pytest.raises(KeyCollision, match="combinations of people share a hash"):
        by_hand(con)


# --- against a second implementation ----------------------------------------------------------------------


def reference(tables, sample, population, sensitive_rows, k, l, dropped=frozenset()):  # noqa: E741
    """Every figure, recomputed with Counters from the definitions in docs/disclosure-risk.md.

    ``dropped``: quasi-identifiers left out (their values count as missing); a table with
    every one left out adds nothing to a person's combination and is not measured alone.
    """
    keys, out = {}, {"tables": {}, "at_risk": {}, "units": {}}
    gone = {t.name for t in tables if all(qi.name in dropped for qi in t.qis)}

    def coarse(t, values):
        return tuple(None if qi.name in dropped else v for qi, v in zip(t.qis, values))

    for t in tables:
        def key(rows, t=t):
            if t.name in gone:
                return ()
            return rows[0] if t.single else tuple(sorted(rows, key=repr))

        grouped = defaultdict(list)
        for unit, month, *values in sample[t.name]:
            grouped[(unit, month)].append(coarse(t, values))
        keys[t.name] = {um: key(rows) for um, rows in grouped.items()}
        f = Counter((m, kk) for (u, m), kk in keys[t.name].items())
        records = Counter()
        for (u, m), rows in grouped.items():
            records[(m, keys[t.name][(u, m)])] += len(rows)
        if t.name in population:
            pop = defaultdict(list)
            for unit, month, *values in population[t.name]:
                pop[(unit, month)].append(coarse(t, values))
            F = Counter((m, key(rows)) for (u, m), rows in pop.items())
        else:
            F = f
        if t.name in gone:
            continue  # a table with nothing left to match is not measured on its own
        for month in sorted({m for m, _ in f}):
            classes = {c: n for c, n in f.items() if c[0] == month}
            out["tables"][(t.name, month)] = (
                sum(classes.values()), sum(records[c] for c in classes), len(classes), min(classes.values()),
                sum(n < k for n in classes.values()), sum(n for n in classes.values() if n < k),
                sum(records[c] for c, n in classes.items() if n < k), sum(n == 1 for n in classes.values()),
                sum(F[c] == 1 for c in classes), round(sum(n / F[c] for c, n in classes.items()), 9),
            )
        out["at_risk"][t.name] = len({u for (u, m), kk in keys[t.name].items() if f[(m, kk)] < k})
        out["units"][t.name] = len({u for u, _ in keys[t.name]})
    persons = [t for t in tables if t.about_persons]
    monthly = [t for t in persons if t.month] or persons
    grain = {um for t in monthly for um in keys[t.name]}
    combined = {}
    for unit, month in grain:
        combined[(unit, month)] = tuple(None if t.name in gone else keys[t.name].get((unit, month if t.month else "")) for t in persons)
    f = Counter((m, c) for (u, m), c in combined.items())
    below_k = {u for (u, m), c in combined.items() if f[(m, c)] < k}
    below_l = set()
    for rows in sensitive_rows.values():
        held = defaultdict(set)
        for unit, month, value in rows:
            if (unit, month) in combined:
                held[(month, combined[(unit, month)])].add(value)
        below_l |= {u for u, m, _ in rows if (u, m) in combined and len(held[(m, combined[(u, m)])]) < l}
    out["persons"] = (len({u for u, _ in grain}), len(below_k), len(below_l), len(below_k | below_l))
    return out


def random_case(seed: int):
    rng = random.Random(seed)
    months = ["2024-01", "2024-02", "2024-03"]
    people = [f"p{i}" for i in range(400)]
    chosen = set(rng.sample(people, 150))
    traits = {p: (rng.choice("12"), str(rng.choice(range(1955, 1958))), rng.choice(["LU", "PT", None])) for p in people}
    person_rows, job_rows = [], []
    for month in months:
        for p in people:
            sex, year, country = traits[p]
            if rng.random() < 0.03:
                country = "DE"  # a move: the combination changes for a month
            if rng.random() < 0.95:
                person_rows.append((p, month, sex, year, country))
            job_rows += [(p, month, rng.choice(["21", "41", None])) for _ in range(rng.choice([0, 1, 1, 1, 1, 1, 2]))]
    survey = [(p, "", rng.choice(["20", "40"])) for p in sorted(chosen) if rng.random() < 0.2]
    diagnoses = [(p, m, rng.choice(["V", "IX", "XIII"])) for p, m, *_ in person_rows if p in chosen and rng.random() < 0.2]
    tables = [MeasuredTable("people", "person_id", "month", qis("people", 3)),
              MeasuredTable("jobs", "person_id", "month", qis("jobs", 1), single=False),
              MeasuredTable("external_survey", "person_id", None, qis("external_survey", 1))]
    sample = {"people": [r for r in person_rows if r[0] in chosen], "jobs": [r for r in job_rows if r[0] in chosen],
              "external_survey": survey}
    population = {"people": person_rows, "jobs": job_rows}
    return tables, sample, population, {"absences.ab_diagnosis": diagnoses}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("k", [2, 5])
def test_every_figure_matches_a_plain_python_count(seed, k):
    tables, sample, population, sensitive_rows = random_case(seed)
    expected = reference(tables, sample, population, sensitive_rows, k, 2)
    diagnosis = Sensitive("absences", "ab_diagnosis", "month", None, "chapter")
    with duckdb.connect() as con:
        space, model = workspace(con, tables, sample, population, [diagnosis], sensitive_rows, k=k)
        figures = space.figures(model.approved)
    got = {(t.table, t.month): (t.units, t.records, t.classes, t.smallest, t.classes_below_k, t.units_below_k, t.records_below_k,
                                t.sample_uniques, t.population_uniques, round(t.expected_reidentifications, 9)) for t in figures.tables}
    assert got == expected["tables"]
    assert {name: below for name, (_, below) in figures.units_at_risk.items()} == expected["at_risk"]
    assert (figures.persons, figures.persons_below_k, figures.persons_below_l, figures.persons_at_risk) == expected["persons"]
    assert 0 < figures.persons_at_risk and (k > 2 or figures.persons_at_risk < figures.persons), "persons at risk, and safe ones"


def test_each_table_counts_the_persons_it_holds_not_the_extracts():
    """A table's units are the persons with a row in it: twenty persons without a job in any month and ten
    without a row of their own still count in the extract as a whole, never in the table they are absent from."""
    tables, sample, population, sensitive_rows = random_case(1)
    chosen = sorted({r[0] for r in sample["people"]})
    sample["jobs"] = [r for r in sample["jobs"] if r[0] not in chosen[:20]]
    sample["people"] = [r for r in sample["people"] if r[0] not in chosen[-10:]]
    expected = reference(tables, sample, population, sensitive_rows, 2, 2)
    diagnosis = Sensitive("absences", "ab_diagnosis", "month", None, "chapter")
    with duckdb.connect() as con:
        space, model = workspace(con, tables, sample, population, [diagnosis], sensitive_rows)
        figures = space.figures(model.approved)
    assert {name: units for name, (units, _) in figures.units_at_risk.items()} == expected["units"]
    assert expected["units"]["jobs"] < expected["persons"][0] and expected["units"]["people"] < expected["persons"][0]
    assert figures.persons == expected["persons"][0]


@pytest.mark.parametrize("dropped", [
    {"people.c1"}, {"jobs.c0"}, {"people.c0", "people.c1", "people.c2"}, {"external_survey.c0", "people.c2", "jobs.c0"},
])
def test_coarser_nodes_match_a_plain_python_count(dropped):
    tables, sample, population, sensitive_rows = random_case(5)
    expected = reference(tables, sample, population, sensitive_rows, 3, 2, frozenset(dropped))
    diagnosis = Sensitive("absences", "ab_diagnosis", "month", None, "chapter")
    with duckdb.connect() as con:
        space, model = workspace(con, tables, sample, population, [diagnosis], sensitive_rows, k=3)
        figures = space.figures({name: DROPPED if name in dropped else level for name, level in model.approved.items()})
    got = {(t.table, t.month): (t.units, t.records, t.classes, t.smallest, t.classes_below_k, t.units_below_k, t.records_below_k,
                                t.sample_uniques, t.population_uniques, round(t.expected_reidentifications, 9)) for t in figures.tables}
    assert got == expected["tables"]
    assert (figures.persons, figures.persons_below_k, figures.persons_below_l, figures.persons_at_risk) == expected["persons"]


def test_the_lattice_shortcut_agrees_with_the_full_figures():
    """``shares_at_risk`` (what the search asks) settles a node early only when the full figures agree it fails."""
    tables, sample, population, sensitive_rows = random_case(4)
    diagnosis = Sensitive("absences", "ab_diagnosis", "month", None, "chapter")
    with duckdb.connect() as con:
        space, model = workspace(con, tables, sample, population, [diagnosis], sensitive_rows, k=3)
        for levels in [model.approved, {**model.approved, "people.c1": DROPPED},
                       {name: DROPPED for name in model.approved}, {**model.approved, "jobs.c0": DROPPED, "people.c2": DROPPED}]:
            full = space.figures(levels)
            space.node(levels)
            for limit in (0.0, 0.05, 0.5, 1.0):
                quick = space.shares_at_risk(limit)
                assert (quick is None and full.share_at_risk > limit) or quick == pytest.approx(
                    (full.share_at_risk, full.share_of_respondents_at_risk))
            worst = full.worst_rate(["people", "jobs", "external_survey"])
            assert space.worst_rate() == pytest.approx(worst.reidentification_rate if worst else 0.0)


@pytest.mark.parametrize("fails", [False, True])
def test_the_risk_step_leaves_the_build_connection_keeping_row_order(monkeypatch, fails):
    """The measures run without insertion order; a build's tables are then written in an order that must hold, so the
    setting is back whatever happens, and a failure surfaces as the measure's own error. The measuring itself is
    replaced here by one that makes a table and then fails or answers: the wrapper around it is what is tested."""
    from lmdp_pipeline.risk import assess

    def measure(con, *_):
        assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0] is False
        con.execute("CREATE TEMP TABLE risk_scratch AS SELECT 1 AS x")
        if fails:
            raise KeyCollision("two combinations share a hash")
        return "figures"

    monkeypatch.setattr(assess, "_measure", measure)
    with duckdb.connect() as con:
        con.execute("CREATE TEMP TABLE selected_jobs AS SELECT 1 AS x")
        if fails:
            with pytest.raises(KeyCollision, match="share a hash"):
                assess._assess(con, None, None, None, {}, {}, keep=False)
        else:
            assert assess._assess(con, None, None, None, {}, {}, keep=False) == "figures"
        assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0] is True
        temporary = {n for (n,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
        assert "selected_jobs" in temporary and ("risk_scratch" in temporary) == fails
