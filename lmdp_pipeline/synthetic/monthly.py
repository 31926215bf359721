"""One month of every register, derived from the population.

Each function returns the register's rows for month ``m`` (an index into the period) as
a dict of column arrays, named as in the contract. Month-specific randomness (short
absences, health care, overtime) comes from a generator seeded by (seed, month,
register), so any month can be produced on its own and always comes out the same.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .names import FIRST_NAMES_FEMALE, FIRST_NAMES_MALE, LAST_NAMES, STREETS
from .population import (
    CHILD,
    CO_INSURED,
    EMPLOYEE,
    JOB_SEEKER,
    NAT,
    PROVIDER_SERVICES,
    RETIREE,
    SELF_EMPLOYED,
    STUDENT,
    VOLUNTARY,
    Population,
)

Columns = dict[str, np.ndarray | pa.Array]

MATERNITY_BEFORE = np.timedelta64(56, "D")
MATERNITY_AFTER = np.timedelta64(84, "D")
EMPLOYER_PAYS_SICKNESS = np.timedelta64(77, "D")
SERVICE_WEIGHTS = {
    "gp": 0.3, "specialist": 0.15, "dentist": 0.07, "physiotherapy": 0.06, "nursing": 0.03,
    "hospital_inpatient": 0.02, "hospital_outpatient": 0.05, "pharmacy": 0.25, "laboratory": 0.07,
}
SERVICE_MEAN_AMOUNT = {
    "gp": 55, "specialist": 75, "dentist": 90, "physiotherapy": 40, "nursing": 35,
    "hospital_inpatient": 2400, "hospital_outpatient": 300, "pharmacy": 45, "laboratory": 30,
}
SHORT_ABSENCE_REASONS = {"sickness": 0.86, "family_reasons": 0.09, "work_accident": 0.045, "occupational_disease": 0.005}
SHORT_ABSENCE_CHAPTERS = {"X": 0.35, "XI": 0.12, "XIII": 0.15, "XVIII": 0.12, "I": 0.1, "V": 0.08, "XIX": 0.08}


def _strings(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values).astype(str))


def _none_if_empty(values: np.ndarray) -> pa.Array:
    values = np.asarray(values).astype(str)
    return pa.array(values, mask=values == "")


def _join(*parts: pa.Array | str, sep: str = " ") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def _overlap_days(start: np.ndarray, end: np.ndarray, month_start, month_end) -> np.ndarray:
    """Days of [start, end] inside the month (0 when disjoint); NaT end means open."""
    end = np.where(np.isnat(end), month_end, end)
    first = np.maximum(start, month_start)
    last = np.minimum(end, month_end)
    return np.maximum((last - first).astype(int) + 1, 0)


@dataclass
class Month:
    """Everything that describes the population in one month, computed once and shared."""

    pop: Population
    m: int
    seed: int

    def __post_init__(self) -> None:
        pop, m = self.pop, self.m
        self.label = pop.period.months[m]
        self.start = pop.period.month_starts[m]
        self.end = pop.period.month_ends[m]
        self.days = int((self.end - self.start).astype(int)) + 1
        self.present = (pop.entry_month <= m) & (pop.exit_month >= m) & (pop.birth_date <= self.end)
        jobs = pop.jobs
        active = (jobs.start <= self.end) & (np.isnat(jobs.end) | (jobs.end >= self.start))
        active &= self.present[jobs.person]
        self.active_jobs = np.flatnonzero(active)
        # The main job is the most recently started active one.
        order = self.active_jobs[np.lexsort((jobs.start[self.active_jobs], jobs.person[self.active_jobs]))]
        self.main_job = np.full(pop.size, -1, dtype=np.int64)
        self.main_job[jobs.person[order]] = order  # sorted by start: the last write per person wins
        self.status = self._status()

    def rng(self, register: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.m, zlib.crc32(register.encode())])

    def _status(self) -> np.ndarray:
        pop, m = self.pop, self.m
        age = (self.end - pop.birth_date).astype(int) / 365.25
        retired = (pop.role == RETIREE) | ((pop.retirement_month <= m) & np.isin(pop.role, [EMPLOYEE, SELF_EMPLOYED, JOB_SEEKER]))
        working = np.where(self.main_job >= 0, "employee", "job_seeker")
        status = np.select(
            [
                (age < 18) | np.isin(pop.role, [CHILD, STUDENT, CO_INSURED]),
                retired,
                pop.role == EMPLOYEE,
                pop.role == SELF_EMPLOYED,
                pop.role == VOLUNTARY,
            ],
            ["co_insured", "pensioner", working, "self_employed", "voluntary"],
            "job_seeker",
        )
        return status

    def who(self) -> np.ndarray:
        return np.flatnonzero(self.present)

    def residence(self, people: np.ndarray) -> np.ndarray:
        pop = self.pop
        household = pop.household[people]
        moved = pop.moved_month[household] <= self.m
        return np.where(moved, pop.new_commune[household], pop.home_commune[household]), moved, household

    def postcode(self, residence: np.ndarray, household: np.ndarray) -> pa.Array:
        """Postcode and locality: one per commune, a few per country abroad."""
        options = self.pop.codes.localities
        codes, inverse = np.unique(residence, return_inverse=True)
        width = max(len(options[c]) for c in codes)
        table = np.array([[options[c][i % len(options[c])] for i in range(width)] for c in codes])
        return _strings(table[inverse, household % width])

    def first_name(self, people: np.ndarray) -> pa.Array:
        female = self.pop.sex[people] == 2
        names = pa.array(list(FIRST_NAMES_MALE) + list(FIRST_NAMES_FEMALE))
        return names.take(pa.array(self.pop.first_name[people] + female * len(FIRST_NAMES_MALE)))

    def full_name(self, people: np.ndarray) -> pa.Array:
        return _join(self.first_name(people), pa.array(LAST_NAMES).take(pa.array(self.pop.last_name[people])))


def individuals(month: Month) -> Columns:
    pop, people = month.pop, month.who()
    citizenship = np.where(pop.naturalised_month[people] <= month.m, 0, pop.citizenship[people])
    residence, moved, household = month.residence(people)
    street_index = (pop.street[household] + np.where(moved, 7, 0)) % len(STREETS)
    number = pop.house_number[household] + np.where(moved, 11, 0)
    postcode = month.postcode(residence, household)
    return {
        "i_matricule": pop.matricule[people],
        "i_month": np.full(len(people), month.label),
        "i_birth_date": pop.birth_date[people],
        "i_sex": pop.sex[people].astype(str),
        "i_citizenship": pop.codes.countries[citizenship],
        "i_residence": residence,
        "i_last_name": pa.array(LAST_NAMES).take(pa.array(pop.last_name[people])),
        "i_first_name": month.first_name(people),
        "i_street": _join(_strings(number), pa.array(STREETS).take(pa.array(street_index))),
        "i_postcode": postcode,
    }


def affiliation(month: Month) -> Columns:
    pop, people = month.pop, month.who()
    status = month.status[people]
    main = month.main_job[people]
    employer = np.where(
        (status == "employee") & (main >= 0), pop.employer_number[pop.jobs.employer[np.maximum(main, 0)]], None
    )
    return {
        "a_matricule": pop.matricule[people],
        "a_month": np.full(len(people), month.label),
        "a_status": status,
        "a_employer": pa.array(employer, type=pa.string()),
        "a_since": pop.affiliated_since[people],
    }


def jobs(month: Month) -> Columns:
    pop, spells = month.pop, month.active_jobs
    jobs = pop.jobs
    end = jobs.end[spells]
    known_end = np.where(~np.isnat(end) & (end <= month.end), end, NAT)
    worked = _overlap_days(jobs.start[spells], end, month.start, month.end)
    overtime = month.rng("jobs").uniform(0.97, 1.06, len(spells))
    wage = np.round(jobs.wage[spells] * overtime * worked / month.days, 2)
    contracts = np.array(["permanent", "fixed_term", "temporary_agency", "apprentice"])
    return {
        "j_matricule": pop.matricule[jobs.person[spells]],
        "j_employer": pop.employer_number[jobs.employer[spells]],
        "j_month": np.full(len(spells), month.label),
        "j_start": jobs.start[spells],
        "j_end": known_end,
        "j_contract": contracts[jobs.contract[spells]],
        "j_hours": jobs.hours[spells],
        "j_wage": wage,
        "j_isco": jobs.isco[spells],
    }


def enterprises(month: Month) -> Columns:
    pop = month.pop
    count = len(pop.employer_number)
    staff = np.bincount(pop.jobs.employer[month.active_jobs], minlength=count)
    size = np.select([staff < 10, staff < 50, staff < 250], ["0_9", "10_49", "50_249"], "250_plus")
    serial = np.arange(count)
    return {
        "e_employer": pop.employer_number,
        "e_month": np.full(count, month.label),
        "e_nace": pop.employer_nace,
        "e_size": size,
        "e_legal_form": pop.employer_legal_form,
        "e_commune": pop.employer_commune,
        "e_since": pop.employer_since,
        "e_name": pop.employer_name,
        "e_street": _join(_strings(serial % 97 + 1), pa.array(STREETS).take(pa.array(serial % len(STREETS)))),
        "e_phone": _strings(np.char.add("+352 ", (260000 + serial * 13 % 700000).astype(str))),
    }


def _person_wage(pop: Population) -> np.ndarray:
    wage = np.zeros(pop.size)
    wage[pop.jobs.person] = pop.jobs.wage
    return np.where(wage > 0, wage, 2500.0)


def _newborn_mothers(pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """Employed mothers of children born inside the period, with the birth date.

    A mother with two births in the period (twins, or drawn twice) takes one maternity leave.
    """
    born = np.flatnonzero((pop.mother >= 0) & (pop.birth_date >= pop.period.start))
    mothers, first = np.unique(pop.mother[born], return_index=True)
    employed = pop.role[mothers] == EMPLOYEE
    return mothers[employed], pop.birth_date[born[first]][employed]


def cash_benefits(month: Month) -> Columns:
    pop, m = month.pop, month.m
    daily_wage = _person_wage(pop) / 30
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # person, type, amount, days

    def add(people, kind, amount, days):
        rows.append((people, np.full(len(people), kind), np.round(amount, 2), np.asarray(days)))

    pensioners = np.flatnonzero(month.present & (month.status == "pensioner") & (pop.pension > 0))
    age = (month.end - pop.birth_date[pensioners]).astype(int) / 365.25
    for kind, mask in (("old_age_pension", age >= 60), ("invalidity_pension", age < 60)):
        add(pensioners[mask], kind, pop.pension[pensioners[mask]], np.full(mask.sum(), month.days))
    cared = np.flatnonzero(month.present & pop.care)
    add(cared, "care", 250 + (cared * 37) % 1200, np.full(len(cared), month.days))

    paid_from = pop.sick_start + EMPLOYER_PAYS_SICKNESS
    sick_days = np.where(np.isnat(pop.sick_start), 0, _overlap_days(paid_from, pop.sick_end, month.start, month.end))
    sick = np.flatnonzero(month.present & (sick_days > 0))
    for kind, reason in (("sickness", 0), ("accident", 1)):
        chosen = sick[pop.sick_reason[sick] == reason]
        add(chosen, kind, sick_days[chosen] * daily_wage[chosen], sick_days[chosen])

    mothers, births = _newborn_mothers(pop)
    leave = _overlap_days(births - MATERNITY_BEFORE, births + MATERNITY_AFTER, month.start, month.end)
    on_leave = (leave > 0) & month.present[mothers]
    add(mothers[on_leave], "maternity", leave[on_leave] * daily_wage[mothers[on_leave]], leave[on_leave])

    parental = np.flatnonzero(month.present & (pop.parental_leave_month <= m) & (m < pop.parental_leave_month + 6))
    add(parental, "parental_leave", np.full(len(parental), 2313.94), np.full(len(parental), month.days))

    decided = ~np.isnat(pop.reclass_date) & pop.reclass_external & (pop.reclass_date < month.start)
    allowance = np.flatnonzero(month.present & decided)
    add(allowance, "reclassification_allowance", 0.8 * 30 * daily_wage[allowance], np.full(len(allowance), month.days))

    people, kinds, amounts, days = (np.concatenate(parts) for parts in zip(*rows))
    return {
        "cb_matricule": pop.matricule[people],
        "cb_month": np.full(len(people), month.label),
        "cb_type": kinds,
        "cb_amount": amounts,
        "cb_days": days.astype(np.int64),
    }


def _draw(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    p = np.array(list(weights.values()))
    return np.array(list(weights))[rng.choice(len(p), size=size, p=p / p.sum())]


def absences(month: Month) -> Columns:
    pop = month.pop
    in_month = lambda dates: ~np.isnat(dates) & (dates >= month.start) & (dates <= month.end)  # noqa: E731
    employer_of = lambda people: pop.employer_number[pop.jobs.employer[month.main_job[people]]]  # noqa: E731
    with_job = month.present & (month.main_job >= 0)

    long_sick = np.flatnonzero(with_job & in_month(pop.sick_start))
    mothers, births = _newborn_mothers(pop)
    starts = births - MATERNITY_BEFORE
    maternity = in_month(starts) & with_job[mothers]

    # Someone already absent for a long spell this month starts no short one.
    busy = ~np.isnat(pop.sick_start) & (_overlap_days(pop.sick_start, pop.sick_end, month.start, month.end) > 0)
    busy[mothers] |= _overlap_days(starts, births + MATERNITY_AFTER, month.start, month.end) > 0
    rng = month.rng("absences")
    candidates = np.flatnonzero(with_job & ~busy & (month.status == "employee"))
    short = candidates[rng.random(len(candidates)) < 0.07]
    short_start = month.start + rng.integers(0, month.days, len(short)).astype("timedelta64[D]")
    short_end = short_start + (rng.geometric(0.25, len(short)) - 1).astype("timedelta64[D]")
    reason = _draw(rng, SHORT_ABSENCE_REASONS, len(short))
    chapter = np.select(
        [reason == "sickness", reason == "work_accident", reason == "occupational_disease"],
        [_draw(rng, SHORT_ABSENCE_CHAPTERS, len(short)), "XIX", "XIII"],
        "",
    )
    people = np.concatenate([long_sick, mothers[maternity], short])
    return {
        "ab_matricule": pop.matricule[people],
        "ab_employer": employer_of(people),
        "ab_month": np.full(len(people), month.label),
        "ab_start": np.concatenate([pop.sick_start[long_sick], starts[maternity], short_start]),
        "ab_end": np.concatenate([pop.sick_end[long_sick], (births + MATERNITY_AFTER)[maternity], short_end]),
        "ab_reason": np.concatenate([
            np.where(pop.sick_reason[long_sick] == 1, "work_accident", "sickness"),
            np.full(maternity.sum(), "maternity"),
            reason,
        ]),
        "ab_diagnosis": _none_if_empty(np.concatenate([pop.sick_chapter[long_sick], np.full(maternity.sum(), ""), chapter])),
    }


def reclassifications(month: Month) -> Columns:
    pop = month.pop
    people = np.flatnonzero(
        month.present & ~np.isnat(pop.reclass_date) & (pop.reclass_date >= month.start) & (pop.reclass_date <= month.end)
    )
    external = pop.reclass_external[people]
    return {
        "r_matricule": pop.matricule[people],
        "r_month": np.full(len(people), month.label),
        "r_decision_date": pop.reclass_date[people],
        "r_type": np.where(external, "external", "internal"),
        "r_reduction": np.where(external, 0, pop.reclass_reduction[people]).astype(np.int64),
    }


def family_links(month: Month) -> Columns:
    pop, present = month.pop, month.present
    couples = np.flatnonzero(present & (pop.partner >= 0))
    couples = couples[present[pop.partner[couples]] & (pop.couple_since[couples] <= month.end)]
    relations = np.array(["spouse", "partner"])
    links = [(couples, pop.partner[couples], relations[pop.couple_relation[couples]], pop.couple_since[couples])]
    for parent in (pop.mother, pop.father):
        children = np.flatnonzero(present & (parent >= 0))
        children = children[present[parent[children]]]
        since = pop.birth_date[children]
        links.append((children, parent[children], np.full(len(children), "parent"), since))
        links.append((parent[children], children, np.full(len(children), "child"), since))
    person, related, relation, since = (np.concatenate(parts) for parts in zip(*links))
    return {
        "f_matricule": pop.matricule[person],
        "f_related": pop.matricule[related],
        "f_month": np.full(len(person), month.label),
        "f_relation": relation,
        "f_since": since,
        "f_related_name": month.full_name(related),
    }


def benefits_in_kind(month: Month) -> Columns:
    pop, rng = month.pop, month.rng("benefits_in_kind")
    people = month.who()
    age = np.clip((month.end - pop.birth_date[people]).astype(int) / 365.25, 0, 100)
    visits = rng.poisson(0.35 + age / 120)
    person = np.repeat(people, visits)
    service = _draw(rng, SERVICE_WEIGHTS, len(person))
    provider_kind = np.char.replace(np.char.replace(service, "_inpatient", ""), "_outpatient", "")
    provider = np.empty(len(person), dtype=np.int64)
    for index, kind in enumerate(PROVIDER_SERVICES):
        candidates = np.flatnonzero(pop.provider_service == index)
        chosen = provider_kind == kind
        provider[chosen] = candidates[rng.integers(0, len(candidates), chosen.sum())]
    first_day = np.maximum(month.start, pop.birth_date[person])
    span = (month.end - first_day).astype(int) + 1
    date = first_day + (rng.random(len(person)) * span).astype("timedelta64[D]")
    names, inverse = np.unique(service, return_inverse=True)
    mean = np.array([SERVICE_MEAN_AMOUNT[name] for name in names])[inverse]
    amount = np.round(mean * rng.lognormal(0, 0.5, len(person)), 2)
    frame = pd.DataFrame(
        {"person": person, "provider": provider, "date": date, "service": service, "quantity": rng.integers(1, 4, len(person)), "amount": amount}
    )
    # Several visits of one person to one provider on one day are one row.
    frame = frame.groupby(["person", "provider", "date", "service"], as_index=False, sort=False).sum()
    return {
        "bk_matricule": pop.matricule[frame["person"].to_numpy()],
        "bk_provider": pop.provider_code[frame["provider"].to_numpy()],
        "bk_month": np.full(len(frame), month.label),
        "bk_date": frame["date"].to_numpy().astype("datetime64[D]"),
        "bk_service": frame["service"].to_numpy().astype(str),
        "bk_quantity": frame["quantity"].to_numpy().astype(np.int64),
        "bk_amount": np.round(frame["amount"].to_numpy(), 2),
        "bk_provider_name": pop.provider_name[frame["provider"].to_numpy()],
    }


REGISTER_BUILDERS = {
    "individuals": individuals,
    "affiliation": affiliation,
    "jobs": jobs,
    "enterprises": enterprises,
    "cash_benefits": cash_benefits,
    "absences": absences,
    "reclassifications": reclassifications,
    "family_links": family_links,
    "benefits_in_kind": benefits_in_kind,
}
