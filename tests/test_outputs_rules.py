"""The disclosure rules on hand-computable tables, and secondary suppression held to linear programming.

Each table is built so that its counts, sums and shares can be checked by hand; the
expected CSVs are written out in full. The linear-programming test recomputes, from the
published CSV alone, the range of values every suppressed cell can take (scipy's HiGHS,
an implementation independent of the suppression code's cycle search) and requires more
than one value.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from lmdp_pipeline.contracts import load_contracts
from lmdp_pipeline.disclosure_policy import policy_of
from lmdp_pipeline.outputs.examination import examine
from lmdp_pipeline.outputs.rules import DOMINANCE, P_PERCENT, SECONDARY, THRESHOLD, ZERO
from lmdp_pipeline.paths import PlatformPaths

from .outputs_helpers import PERSON, column, grid_rows, make_extract, pid, write_request

GROUPS = column("grp", "VARCHAR", "group", {"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"})
KINDS = column("kind", "VARCHAR", "kind", {"x": "x", "y": "y", "z": "z"})
AMOUNT = column("amount", "DOUBLE", "default")
CROSS = {"from": "people", "rows": "grp", "columns": "kind", "statistic": "count"}


def people(home: PlatformPaths, cells: dict, amounts: list[tuple] | None = None) -> None:
    rows, _ = grid_rows(cells)
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], rows),
                        "payments": ([PERSON, GROUPS, AMOUNT], amounts or [])})


def examined(home, tables: dict, contracts, policy=None, name="r1"):
    examination = examine(home, contracts, write_request(home, name, tables), policy)
    assert not examination.all_reasons, examination.all_reasons
    return examination


def csv_lines(examination, table: str) -> list[list[str]]:
    outcome = next(t for t in examination.tables if t.name == table)
    return [line.split(",") for line in outcome.csv.strip().split("\n")]


@pytest.fixture
def home(tmp_path) -> PlatformPaths:
    return PlatformPaths(tmp_path)


def test_a_cell_of_9_persons_is_suppressed_with_the_cheapest_protection(home, contracts):
    people(home, {("A", "x"): 9, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40})
    examination = examined(home, {"t": CROSS}, contracts)
    assert csv_lines(examination, "t") == [
        ["grp / kind", "x", "y", "Total"],
        ["A", "[c]", "[c]", "29"],
        ["B", "[c]", "[c]", "70"],
        ["Total", "39", "60", "99"],
    ]
    cells = examination.tables[0].cells.cells
    assert cells[("A", "x")].reasons == [THRESHOLD]
    assert [cells[k].reasons for k in [("A", "y"), ("B", "x"), ("B", "y")]] == [[SECONDARY]] * 3
    assert examination.status == "released"


def test_ten_persons_pass_the_threshold(home, contracts):
    people(home, {("A", "x"): 10, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40})
    assert csv_lines(examined(home, {"t": CROSS}, contracts), "t")[1] == ["A", "10", "20", "30"]


def test_counts_are_persons_not_rows(home, contracts):
    rows, _ = grid_rows({("A", "x"): 9, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40})
    rows += [(pid(0), "A", "x")] * 11  # the first person of (A, x) has 12 rows: still 9 persons
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], rows)})
    examination = examined(home, {"t": CROSS}, contracts)
    assert examination.tables[0].cells.cells[("A", "x")].persons == 9
    assert csv_lines(examination, "t")[1][1] == "[c]"


def test_a_value_held_by_fewer_than_the_threshold_is_pooled_and_never_shown(home, contracts):
    people(home, {("A", "x"): 15, ("B", "x"): 12, ("C", "x"): 3, ("D", "x"): 2})
    examination = examined(home, {"t": {"from": "people", "rows": "grp", "statistic": "count"}}, contracts)
    lines = csv_lines(examination, "t")
    assert [line[0] for line in lines] == ["grp", "A", "B", "(other categories)", "Total"]
    assert lines[3][1] == "[c]" and examination.tables[0].cells.cells[("(other categories)", None)].persons == 5


def dominance_rows(values_a: list[float], values_b: list[float]) -> list[tuple]:
    return [(pid(i), "A", v) for i, v in enumerate(values_a)] + [(pid(100 + i), "B", v) for i, v in enumerate(values_b)]


SUMS = {"t": {"from": "payments", "rows": "grp", "statistic": "sum", "value": "amount"}}


def test_two_persons_holding_91_percent_of_a_cell_fail_dominance(home, contracts):
    people(home, {("A", "x"): 10}, dominance_rows([50, 41] + [1.125] * 8, [5.0] * 20))  # 50 + 41 = 91 of 100
    examination = examined(home, SUMS, contracts)
    cells = examination.tables[0].cells.cells
    assert cells[("A", None)].reasons == [DOMINANCE], "the rest (9) is more than 10% of the largest (50): p-percent passes"
    assert cells[("B", None)].reasons == [SECONDARY] and cells[(None, None)].reasons == []
    assert csv_lines(examination, "t") == [["grp", "sum of amount"], ["A", "[c]"], ["B", "[c]"], ["Total", "200.00"]]


def test_two_persons_holding_exactly_90_percent_fail_as_in_acro(home, contracts):
    people(home, {("A", "x"): 10}, dominance_rows([50, 40] + [1.25] * 8, [5.0] * 20))  # ACRO: top n / total >= k
    assert examined(home, SUMS, contracts).tables[0].cells.cells[("A", None)].reasons == [DOMINANCE]


def test_two_persons_holding_89_percent_pass(home, contracts):
    people(home, {("A", "x"): 10}, dominance_rows([50, 39] + [1.375] * 8, [5.0] * 20))
    assert csv_lines(examined(home, SUMS, contracts), "t")[1] == ["A", "100.00"]


def test_a_person_is_one_contributor_whatever_their_rows(home, contracts):
    rows = dominance_rows([10] * 12, [5.0] * 20) + [(pid(0), "A", 10.0)] * 10  # person 0: 11 rows, 110 of 230
    people(home, {("A", "x"): 10}, rows)
    cells = examined(home, SUMS, contracts).tables[0].cells.cells
    assert cells[("A", None)].top[:2] == [110.0, 10.0] and DOMINANCE not in cells[("A", None)].reasons


def test_p_percent_when_the_rest_is_less_than_a_tenth_of_the_largest(home, contracts):
    people(home, {("A", "x"): 10}, dominance_rows([100, 1] + [1.0] * 8, [5.0] * 20))  # rest 8 < 10% of 100
    cells = examined(home, SUMS, contracts).tables[0].cells.cells
    assert set(cells[("A", None)].reasons) == {DOMINANCE, P_PERCENT}, "with ACRO's defaults a p-percent failure is also a (2, 90%) one"
    policy = policy_of(contracts)
    lenient = policy.model_copy(update={"output": policy.output.model_copy(update={"dominance_k": 0.99})})
    cells = examined(home, SUMS, contracts, lenient, name="r2").tables[0].cells.cells
    assert cells[("A", None)].reasons == [P_PERCENT]


def test_a_zero_is_suppressed_unless_declared_structural(home, contracts):
    people(home, {("A", "y"): 15, ("B", "x"): 12, ("B", "y"): 20})
    cells = examined(home, {"t": CROSS}, contracts).tables[0].cells.cells
    assert cells[("A", "x")].persons == 0 and cells[("A", "x")].reasons == [ZERO]
    declared = examined(home, {"t": {**CROSS, "structural_zeros": [{"grp": "A", "kind": "x"}]}}, contracts, name="r2")
    assert csv_lines(declared, "t")[1] == ["A", "0", "15", "15"]
    assert declared.tables[0].cells.cells[("A", "x")].notes == ["structural zero, as the request declares: published as 0"]


def test_a_share_is_a_percentage_of_the_persons_of_the_table(home, contracts):
    people(home, {("A", "x"): 30, ("B", "x"): 10, ("C", "x"): 60})
    lines = csv_lines(examined(home, {"t": {"from": "people", "rows": "grp", "statistic": "share"}}, contracts), "t")
    assert lines == [["grp", "share"], ["A", "30.0"], ["B", "10.0"], ["C", "60.0"], ["Total", "100.0"]]


def test_mean_and_median_over_the_rows_of_a_cell(home, contracts):
    amounts = [(pid(i), "A", float(i)) for i in range(1, 12)] + [(pid(50 + i), "B", 7.0) for i in range(10)]
    people(home, {("A", "x"): 10}, amounts)
    mean = {"from": "payments", "rows": "grp", "statistic": "mean", "value": "amount"}
    examination = examined(home, {"m": mean, "d": {**mean, "statistic": "median"}}, contracts)
    assert csv_lines(examination, "m")[1:] == [["A", "6.00"], ["B", "7.00"], ["Total", f"{(66 + 70) / 21:.2f}"]]
    assert csv_lines(examination, "d")[1:] == [["A", "6.00"], ["B", "7.00"], ["Total", "7.00"]]


# --- secondary suppression against linear programming ------------------------------------------------


def lp_ranges(lines: list[list[str]]) -> dict[tuple[int, int], tuple[float, float]]:
    """From a published CSV only: every [c] cell's lowest and highest value consistent with the rest (cells >= 0)."""
    body = [line[1:] for line in lines[1:]]
    rows, cols = len(body), len(body[0])
    unknown = [(i, j) for i in range(rows) for j in range(cols) if body[i][j] == "[c]"]
    index = {cell: k for k, cell in enumerate(unknown)}
    equations, constants = [], []
    groups = [[(i, j) for i in range(rows)] for j in range(cols)]  # every column: its cells add up to the total row
    if cols > 1:
        groups += [[(i, j) for j in range(cols)] for i in range(rows)]  # every row: its cells add up to the total column
    for group in groups:
        coefficients, constant = [0.0] * len(unknown), 0.0
        for position, cell in enumerate(group):
            sign = -1.0 if position == len(group) - 1 else 1.0
            if cell in index:
                coefficients[index[cell]] += sign
            else:
                constant -= sign * float(body[cell[0]][cell[1]])
        if any(coefficients):
            equations.append(coefficients)
            constants.append(constant)
    ranges = {}
    for cell, k in index.items():
        objective = [0.0] * len(unknown)
        objective[k] = 1.0
        low = linprog(objective, A_eq=equations, b_eq=constants, bounds=(0, None), method="highs")
        high = linprog([-c for c in objective], A_eq=equations, b_eq=constants, bounds=(0, None), method="highs")
        assert low.status == 0, "the published table must be consistent"
        ranges[cell] = (low.fun, float("inf") if high.status == 3 else -high.fun)
    return ranges


def assert_protected(lines):
    for cell, (low, high) in lp_ranges(lines).items():
        assert high - low >= 1 - 1e-9, f"suppressed cell {cell} can only be {low}..{high}"


@pytest.mark.parametrize("cells", [
    {("A", "x"): 9, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40},
    {("A", "x"): 1, ("A", "y"): 50, ("A", "z"): 50, ("B", "x"): 30, ("B", "y"): 2, ("B", "z"): 40, ("C", "x"): 15, ("C", "y"): 12, ("C", "z"): 11},
    {("A", "x"): 3, ("A", "y"): 0, ("B", "x"): 25, ("B", "y"): 11, ("C", "x"): 40, ("C", "y"): 4},
    {("A", "x"): 10, ("A", "y"): 10, ("B", "x"): 10, ("B", "y"): 2},
])
def test_no_suppressed_cell_can_be_recomputed_from_what_is_published(home, contracts, cells):
    people(home, cells)
    examination = examined(home, {"t": CROSS}, contracts)
    assert examination.tables[0].status == "pass"
    lines = csv_lines(examination, "t")
    assert any("[c]" in line for line in lines)
    assert_protected(lines)


def test_without_secondary_suppression_the_linear_programme_finds_the_cell(home, contracts):
    """The LP test can fail: a table with the primary cell alone suppressed gives it away."""
    people(home, {("A", "x"): 9, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40})
    lines = [["grp / kind", "x", "y", "Total"], ["A", "[c]", "20", "29"], ["B", "30", "40", "70"], ["Total", "39", "60", "99"]]
    assert lp_ranges(lines)[(0, 0)] == (9, 9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from([0, 1, 2, 5, 9, 10, 11, 14, 30, 60]), min_size=3, max_size=3), min_size=2, max_size=5))
def test_random_tables_are_protected(tmp_path_factory, grid):
    assume(sum(map(sum, grid)) > 0)
    contracts = load_contracts()
    home = PlatformPaths(tmp_path_factory.mktemp("random"))
    cells = {(g, k): n for g, row in zip("ABCDE", grid) for k, n in zip("xyz", row)}
    people(home, cells)
    examination = examine(home, contracts, write_request(home, "r1", {"t": CROSS}))
    outcome = examination.tables[0]
    if outcome.unprotectable:
        assert examination.status == "refused", "a table with a cell no suppression protects is not released"
        return
    assert_protected(csv_lines(examination, "t"))


def test_a_cell_no_suppression_can_hide_refuses_the_request(home, contracts):
    """Every sum is zero: whatever is suppressed, the totals show it is zero too."""
    rows = [(pid(i), g, k, 0.0) for i, (g, k) in enumerate([("A", "x")] * 9 + [("A", "y")] * 20 + [("B", "x")] * 30 + [("B", "y")] * 40)]
    make_extract(home, {"payments": ([PERSON, GROUPS, KINDS, AMOUNT], rows)})
    table = {"from": "payments", "rows": "grp", "columns": "kind", "statistic": "sum", "value": "amount"}
    examination = examine(home, contracts, write_request(home, "r1", {"t": table}))
    assert examination.status == "refused"
    assert examination.reasons == ["table t: 1 cell(s) cannot be protected by suppression (no other cell can hide them): "
                                   "ask for fewer categories or a coarser variable"]


# --- rules held at their edges (each test breaks one rule alone; expected values computed here by hand) -------


def lenient(contracts, **changes):
    """The policy with some of its output rules changed, to try one rule without the others."""
    policy = policy_of(contracts)
    return policy.model_copy(update={"output": policy.output.model_copy(update=changes)})


def test_p_percent_takes_out_both_largest_contributors(home, contracts):
    """100, 20 and eight of 1.125: the rest without the two largest is 9, under 10% of 100 (the second largest, knowing
    its own 20, estimates the largest from the total within 9%); the rest without the largest alone would be 29."""
    values = [100, 20] + [1.125] * 8
    largest, second = sorted(values, reverse=True)[:2]
    assert (sum(values) - largest - second) / largest < 0.10 <= (sum(values) - largest) / largest
    assert (largest + second) / sum(values) < 0.99
    people(home, {("A", "x"): 10}, dominance_rows(values, [5.0] * 20))
    cells = examined(home, SUMS, contracts, lenient(contracts, dominance_k=0.99)).tables[0].cells.cells
    assert cells[("A", None)].reasons == [P_PERCENT]
    safe = [100, 20] + [1.375] * 8  # the rest is 11: more than 10% of the largest
    people(home, {("A", "x"): 10}, dominance_rows(safe, [5.0] * 20))
    cells = examined(home, SUMS, contracts, lenient(contracts, dominance_k=0.99), name="r2").tables[0].cells.cells
    assert cells[("A", None)].reasons == []


def test_dominance_counts_the_policys_n_largest_contributors(home, contracts):
    """With n = 3: 40 + 30 + 21 hold 91% of 100 (the two largest only 70%): dominated."""
    values = [40, 30, 21] + [1.125] * 8
    assert sum(sorted(values, reverse=True)[:3]) / sum(values) >= 0.90 > sum(sorted(values, reverse=True)[:2]) / sum(values)
    people(home, {("A", "x"): 10}, dominance_rows(values, [5.0] * 20))
    examination = examined(home, SUMS, contracts, lenient(contracts, dominance_n=3))
    assert examination.tables[0].cells.cells[("A", None)].reasons == [DOMINANCE]
    assert csv_lines(examination, "t")[1] == ["A", "[c]"]


def test_a_structural_zero_covers_only_the_cell_it_declares(home, contracts):
    """(A, x) is declared structural; (A, z), also empty, shares its row but not its column: still a disclosive zero."""
    people(home, {("A", "y"): 15, ("B", "x"): 12, ("B", "y"): 20, ("B", "z"): 11})
    examination = examined(home, {"t": {**CROSS, "structural_zeros": [{"grp": "A", "kind": "x"}]}}, contracts)
    cells = examination.tables[0].cells.cells
    assert cells[("A", "x")].persons == 0 and cells[("A", "x")].reasons == []
    assert cells[("A", "z")].persons == 0 and cells[("A", "z")].reasons == [ZERO]
    assert csv_lines(examination, "t")[1][1] == "0" and csv_lines(examination, "t")[1][3] == "[c]"


def test_a_value_held_by_one_person_with_many_rows_is_pooled(home, contracts):
    """Category C has 12 rows but one person: its label alone tells that someone has it."""
    rows, _ = grid_rows({("A", "x"): 15, ("B", "x"): 12})
    rows += [(pid(500), "C", "x")] * 12
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], rows)})
    examination = examined(home, {"t": {"from": "people", "rows": "grp", "statistic": "count"}}, contracts)
    lines = csv_lines(examination, "t")
    assert [line[0] for line in lines] == ["grp", "A", "B", "(other categories)", "Total"]
    assert lines[3][1] == "[c]" and lines[4][1] == str(15 + 12 + 1)
