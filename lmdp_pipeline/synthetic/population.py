"""The synthetic population: people, households, employers and providers, drawn once.

Everything that persists from month to month (a person's birth date, household, jobs,
long illness, pension) is drawn here, vectorised over persons, from one seeded
generator. The monthly registers are then pure functions of this population and the
month, which keeps them coherent with each other and the output deterministic.
Memory grows with the number of persons (about 0.3 KB each), never with the months.

Marginals follow Luxembourg: about 47% of residents Luxembourgish, Portuguese the
largest foreign group, and about 45% of employees cross-border workers from France,
Belgium and Germany.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contracts import ContractSet
from ..contracts.models import IdentifierFormat
from ..identifiers import with_check_digits
from .names import (
    COMPANY_SUFFIX_BY_LEGAL_FORM,
    COMPANY_WORDS,
    FIRST_NAMES_FEMALE,
    FIRST_NAMES_MALE,
    FOREIGN_LOCALITIES,
    LAST_NAMES,
)
from ..period import Period

NEVER = np.iinfo(np.int32).max // 2
"""Month index of an event that does not happen within reach of the period."""
NAT = np.datetime64("NaT", "D")

# Roles: what a person does at the start of the period.
CHILD, STUDENT, EMPLOYEE, SELF_EMPLOYED, JOB_SEEKER, RETIREE, CO_INSURED, VOLUNTARY = range(8)

RESIDENT_SHARE = 0.74
RESIDENT_CITIZENSHIP = {  # group -> share among residents
    "LU": 0.47, "PT": 0.145, "FR": 0.075, "BE": 0.03, "DE": 0.02, "other_eu": 0.12, "other": 0.14,
}
CROSS_BORDER_COUNTRY = {"FR": 0.52, "BE": 0.24, "DE": 0.24}
OTHER_EU = ("IT", "ES", "NL", "PL", "RO", "GR", "AT", "IE", "HU", "BG", "SE", "FI", "DK", "HR")
OTHER_WORLD = ("GB", "US", "CN", "IN", "BR", "CV", "RS", "ME", "UA", "SY", "ER", "MA", "TR", "CH", "JP", "PH")
BIG_COMMUNES = {  # commune label -> share of residents
    "Luxembourg": 0.20, "Esch-sur-Alzette": 0.055, "Differdange": 0.04, "Dudelange": 0.03,
    "Pétange": 0.025, "Sanem": 0.025, "Hesperange": 0.02, "Bettembourg": 0.016,
}
NACE_SECTION_WEIGHTS = {
    "G": 0.16, "F": 0.13, "M": 0.12, "K": 0.10, "I": 0.08, "N": 0.08, "Q": 0.07, "H": 0.06, "C": 0.05,
    "J": 0.05, "S": 0.03, "O": 0.02, "P": 0.02, "L": 0.02, "R": 0.01,
}
ISCO_MAJOR_WEIGHTS = {"1": 0.07, "2": 0.24, "3": 0.16, "4": 0.12, "5": 0.13, "6": 0.01, "7": 0.11, "8": 0.05, "9": 0.11}
LEGAL_FORMS = {"sarl": 0.48, "sa": 0.24, "sarls": 0.06, "secs": 0.03, "asbl": 0.05, "individual": 0.09, "household": 0.03}
PROVIDER_SERVICES = ("gp", "specialist", "dentist", "physiotherapy", "nursing", "hospital", "pharmacy", "laboratory")
PROVIDER_TITLES = ("Dr ", "Dr ", "Dr ", "Kiné ", "Soins ", "Hôpital ", "Pharmacie ", "Laboratoire ")


def _choice(rng: np.random.Generator, options: dict[str, float] | list[str], size: int) -> np.ndarray:
    """Draw option indices with the given weights (uniform for a plain list)."""
    if isinstance(options, dict):
        weights = np.array(list(options.values()), dtype=float)
        return rng.choice(len(weights), size=size, p=weights / weights.sum())
    return rng.integers(0, len(options), size=size)


def _years(n: float | np.ndarray) -> np.ndarray:
    return np.round(np.asarray(n) * 365.25).astype("timedelta64[D]")


def _month_index(dates: np.ndarray, period: Period) -> np.ndarray:
    """Month index of each date relative to the period's first month (NaT -> NEVER)."""
    index = (dates.astype("datetime64[M]") - period.first).astype(np.int64)
    return np.where(np.isnat(dates), NEVER, index).astype(np.int32)


@dataclass
class Codes:
    """The code lists the generator draws from, read from the contracts."""

    communes: np.ndarray  # Luxembourg commune codes
    commune_weights: np.ndarray
    countries: np.ndarray  # citizenship codes, index 0 = LU
    nace_classes: np.ndarray
    nace_weights: np.ndarray
    isco_units: np.ndarray
    isco_major: np.ndarray  # major group of each unit
    diagnosis_chapters: np.ndarray
    localities: dict[str, tuple[str, ...]]  # residence code -> "postcode locality" options

    @classmethod
    def from_contracts(cls, contracts: ContractSet) -> "Codes":
        residence = contracts.code_lists["residence"]
        to_country = residence.mapping("country")
        communes = [c for c in residence.finest.codes if to_country[c.code] == "LU"]
        big = {label: share for label, share in BIG_COMMUNES.items()}
        rest = (1 - sum(big.values())) / max(1, len(communes) - len(big))
        weights = np.array([big.get(c.label, rest) for c in communes])
        countries = ["LU"] + sorted(c.code for c in contracts.code_lists["countries"].finest.codes if c.code != "LU")
        nace = contracts.code_lists["nace_rev2"]
        section_of = nace.mapping("section")
        nace_classes = np.array(sorted(section_of))
        per_section = {s: sum(1 for c in nace_classes if section_of[c] == s) for s in NACE_SECTION_WEIGHTS}
        nace_weights = np.array(
            [NACE_SECTION_WEIGHTS.get(section_of[c], 0.0) / max(1, per_section.get(section_of[c], 1)) for c in nace_classes]
        )
        isco = contracts.code_lists["isco08"]
        major_of = isco.mapping("major")
        isco_units = np.array(sorted(u for u in major_of if major_of[u] != "0"))
        chapters = contracts["absences"].variable("ab_diagnosis").codes
        return cls(
            communes=np.array([c.code for c in communes]),
            commune_weights=weights / weights.sum(),
            countries=np.array(countries),
            nace_classes=nace_classes,
            nace_weights=nace_weights / nace_weights.sum(),
            isco_units=isco_units,
            isco_major=np.array([major_of[u] for u in isco_units]),
            diagnosis_chapters=np.array([c.code for c in chapters.finest.codes]),
            localities={
                **{c.code: (f"L-{1000 + int(c.code) * 53 % 8999} {c.label}",) for c in communes},
                **FOREIGN_LOCALITIES,
            },
        )


@dataclass
class Jobs:
    """One job spell per person slot (a person has a first and possibly a second spell)."""

    person: np.ndarray
    employer: np.ndarray
    start: np.ndarray
    end: np.ndarray  # NaT = open-ended
    contract: np.ndarray
    hours: np.ndarray
    wage: np.ndarray
    isco: np.ndarray


@dataclass
class Population:
    period: Period
    codes: Codes
    # persons
    matricule: np.ndarray
    birth_date: np.ndarray
    sex: np.ndarray
    cross_border: np.ndarray
    role: np.ndarray
    citizenship: np.ndarray  # index into codes.countries, at the start
    naturalised_month: np.ndarray
    household: np.ndarray
    entry_month: np.ndarray
    exit_month: np.ndarray
    affiliated_since: np.ndarray
    retirement_month: np.ndarray
    last_name: np.ndarray
    first_name: np.ndarray
    pension: np.ndarray  # monthly amount, 0 = none
    care: np.ndarray  # receives long-term care cash benefit
    # households
    home_commune: np.ndarray  # commune code or country code abroad
    moved_month: np.ndarray
    new_commune: np.ndarray
    house_number: np.ndarray
    street: np.ndarray
    # relations
    partner: np.ndarray  # -1 none
    couple_since: np.ndarray
    couple_relation: np.ndarray  # 0 spouse, 1 partner
    mother: np.ndarray  # -1 none
    father: np.ndarray
    # work
    jobs: Jobs
    parental_leave_month: np.ndarray
    sick_start: np.ndarray  # long sickness episode, NaT none
    sick_end: np.ndarray
    sick_reason: np.ndarray  # 0 sickness, 1 work accident
    sick_chapter: np.ndarray
    reclass_date: np.ndarray
    reclass_external: np.ndarray
    reclass_reduction: np.ndarray
    # employers and providers
    employer_number: np.ndarray
    employer_nace: np.ndarray
    employer_legal_form: np.ndarray
    employer_commune: np.ndarray
    employer_since: np.ndarray
    employer_name: np.ndarray
    provider_code: np.ndarray
    provider_service: np.ndarray
    provider_name: np.ndarray

    @property
    def size(self) -> int:
        return len(self.matricule)


def _matricules(birth_date: np.ndarray, unknown_day: np.ndarray) -> np.ndarray:
    """Unique valid matricules: birth date part, a sequence number per date part, check digits."""
    year = birth_date.astype("datetime64[Y]").astype(int) + 1970
    month = birth_date.astype("datetime64[M]").astype(int) % 12 + 1
    day = (birth_date - birth_date.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
    date_part = year.astype(np.int64) * 10000 + month * 100 + np.where(unknown_day, 0, day)
    order = np.argsort(date_part, kind="stable")
    sorted_parts = date_part[order]
    group_start = np.searchsorted(sorted_parts, sorted_parts, side="left")
    sequence = np.empty_like(date_part)
    sequence[order] = np.arange(len(order)) - group_start
    if len(sequence) and sequence.max() >= 1000:
        raise ValueError("more than 1000 persons share a birth date: lower --persons or widen the ages")
    return with_check_digits(date_part * 1000 + sequence, IdentifierFormat.matricule)


def _draw_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ages in years at the start of the period: a pyramid thinning after 60."""
    ages = np.arange(0, 96)
    weights = np.where(ages < 60, 1.0, np.exp(-(ages - 60) / 12.0))
    return rng.choice(ages, size=n, p=weights / weights.sum()) + rng.random(n)


def _assign_roles(rng: np.random.Generator, age: np.ndarray, cross_border: np.ndarray) -> np.ndarray:
    u = rng.random(len(age))
    role = np.full(len(age), CO_INSURED, dtype=np.int8)
    role[age < 18] = CHILD
    young = (age >= 18) & (age < 25)
    role[young & (u < 0.45)] = EMPLOYEE
    role[young & (u >= 0.45)] = STUDENT
    working = (age >= 25) & (age < 65)
    bands = np.cumsum([0.73, 0.07, 0.05, 0.04, 0.005])
    role[working] = np.select(
        [u < bands[0], u < bands[1], u < bands[2], u < bands[3], u < bands[4]],
        [EMPLOYEE, SELF_EMPLOYED, JOB_SEEKER, RETIREE, VOLUNTARY],
        CO_INSURED,
    )[working]
    role[(age >= 65) & (u < 0.95)] = RETIREE
    role[cross_border] = np.where(u[cross_border] < 0.95, EMPLOYEE, SELF_EMPLOYED)
    return role


def _citizenship(rng: np.random.Generator, codes: Codes, cross_border: np.ndarray, country: np.ndarray) -> np.ndarray:
    n = len(cross_border)
    groups = list(RESIDENT_CITIZENSHIP)
    drawn = np.array(groups)[_choice(rng, RESIDENT_CITIZENSHIP, n)]
    other_eu = np.array(OTHER_EU)[rng.integers(0, len(OTHER_EU), n)]
    other = np.array(OTHER_WORLD)[rng.integers(0, len(OTHER_WORLD), n)]
    code = np.where(drawn == "other_eu", other_eu, np.where(drawn == "other", other, drawn))
    # Cross-border workers mostly hold the citizenship of the country they live in.
    own = rng.random(n) < 0.85
    code = np.where(cross_border & own, country, code)
    code = np.where(cross_border & ~own & (code == "LU"), "PT", code)
    return _index_of(codes.countries, code)


def _index_of(sorted_with_lu_first: np.ndarray, values: np.ndarray) -> np.ndarray:
    rest = sorted_with_lu_first[1:]
    index = np.searchsorted(rest, values) + 1
    return np.where(values == "LU", 0, index).astype(np.int16)


def _households(rng: np.random.Generator, codes: Codes, months: int, country: np.ndarray, cross_border: np.ndarray):
    """One household per person to start with; couples and children are merged in later."""
    n = len(country)
    commune = codes.communes[rng.choice(len(codes.communes), size=n, p=codes.commune_weights)]
    home = np.where(cross_border, country, commune)
    moves = rng.random(n) < 0.08 * months / 12  # about 8% of resident households move in a year
    moved_month = np.where(moves & ~cross_border, rng.integers(0, months, n), NEVER).astype(np.int32)
    new_commune = codes.communes[rng.choice(len(codes.communes), size=n, p=codes.commune_weights)]
    return home, moved_month, new_commune, rng.integers(1, 180, n), rng.integers(0, 20, n)


def _pair_couples(rng: np.random.Generator, age: np.ndarray, sex: np.ndarray, resident: np.ndarray):
    """Pair about 55% of resident adults into couples of close age."""
    n = len(age)
    partner = np.full(n, -1, dtype=np.int64)
    eligible = resident & (age >= 22) & (rng.random(n) < 0.55)
    men = np.flatnonzero(eligible & (sex == 1))
    women = np.flatnonzero(eligible & (sex == 2))
    men = men[np.argsort(age[men], kind="stable")]
    women = women[np.argsort(age[women], kind="stable")]
    k = min(len(men), len(women))
    partner[men[:k]] = women[:k]
    partner[women[:k]] = men[:k]
    return partner


def _assign_parents(rng, birth_date, sex, resident, role, partner, child_mask):
    """Give each child a resident mother 20 to 40 years older, and her partner as father."""
    n = len(birth_date)
    mother = np.full(n, -1, dtype=np.int64)
    women = np.flatnonzero(resident & (sex == 2) & (role != CHILD))
    if len(women) == 0:
        return mother, mother.copy()
    women = women[np.argsort(birth_date[women], kind="stable")]
    children = np.flatnonzero(child_mask)
    target = birth_date[children] - _years(rng.uniform(22, 38, len(children)))
    slot = np.clip(np.searchsorted(birth_date[women], target), 0, len(women) - 1)
    mother[children] = women[slot]
    father = np.where(mother >= 0, partner[np.maximum(mother, 0)], -1)
    return mother, np.where(mother >= 0, father, -1)


def _employers(rng: np.random.Generator, codes: Codes, count: int, period: Period):
    serial = np.arange(count, dtype=np.int64)
    registered = period.start - _years(rng.uniform(1, 60, count))
    year = registered.astype("datetime64[Y]").astype(int) + 1970
    payload = year.astype(np.int64) * 1_000_000 + 200_000 + serial  # YYYY 2 NNNNN: 10 digits
    number = with_check_digits(payload, IdentifierFormat.employer_number)
    nace = codes.nace_classes[rng.choice(len(codes.nace_classes), size=count, p=codes.nace_weights)]
    legal = np.array(list(LEGAL_FORMS))[_choice(rng, LEGAL_FORMS, count)]
    legal = np.where(np.char.startswith(nace, "84."), "public", legal)
    commune = codes.communes[rng.choice(len(codes.communes), size=count, p=codes.commune_weights)]
    return number, nace, legal, commune, registered


def _job_spells(rng, n, role, birth_date, period: Period, employer_weights, codes: Codes, exit_date, retire_date):
    """First spell for every worker; a second spell with another employer for most who leave."""
    workers = np.flatnonzero((role == EMPLOYEE) | (role == SELF_EMPLOYED))
    employees = workers[role[workers] == EMPLOYEE]
    k = len(employees)
    span_days = (period.end - period.start).astype(int)
    start1 = period.start - np.minimum(
        _years(rng.exponential(6.0, k)), (period.start - birth_date[employees] - _years(18)).clip(0)
    )
    ends = rng.random(k) < min(0.9, 0.15 * len(period) / 12)  # about 15% of jobs end in a year
    end1 = np.where(ends, period.start + rng.integers(0, span_days + 1, k).astype("timedelta64[D]"), NAT)
    rehired = ends & (rng.random(k) < 0.8)
    start2 = np.where(rehired, end1 + rng.integers(1, 180, k).astype("timedelta64[D]"), NAT)
    rehired &= start2 <= period.end

    def spell(people, start, end):
        m = len(people)
        employer = rng.choice(len(employer_weights), size=m, p=employer_weights)
        contract = rng.choice(4, size=m, p=[0.82, 0.1, 0.05, 0.03])
        hours = np.where(rng.random(m) < 0.8, 40.0, rng.choice([16.0, 20.0, 24.0, 30.0, 32.0], size=m))
        major = np.array(list(ISCO_MAJOR_WEIGHTS))[_choice(rng, ISCO_MAJOR_WEIGHTS, m)]
        isco = np.empty(m, dtype=codes.isco_units.dtype)
        for group in np.unique(major):
            units = codes.isco_units[codes.isco_major == group]
            pick = major == group
            isco[pick] = units[rng.integers(0, len(units), pick.sum())]
        level = np.select([major == "1", major == "2", major == "3"], [2.4, 1.9, 1.4], 1.0)
        wage = np.round(3200 * level * rng.lognormal(0, 0.35, m) * hours / 40, 2)
        cap = np.minimum(exit_date[people], retire_date[people])
        end = np.where(np.isnat(end) | (end > cap), np.where(cap <= period.end, cap, end), end)
        return Jobs(people, employer, start, end, contract, hours, wage, isco)

    first = spell(employees, start1, end1)
    second = spell(employees[rehired], start2[rehired], np.full(rehired.sum(), NAT))
    return Jobs(*(np.concatenate([getattr(first, f), getattr(second, f)]) for f in Jobs.__dataclass_fields__))


def _last_job_end(jobs: Jobs, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per person: the latest end among their ended spells (NaT if none), and whether a spell is open."""
    ends = np.where(np.isnat(jobs.end), np.iinfo(np.int64).min, jobs.end.astype(np.int64))
    latest = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(latest, jobs.person, ends)  # NaT is int64's minimum, so "no ended spell" stays NaT
    open_ended = np.zeros(n, dtype=bool)
    np.logical_or.at(open_ended, jobs.person, np.isnat(jobs.end))
    return latest.astype("datetime64[D]"), open_ended


def draw_population(contracts: ContractSet, period: Period, persons: int, seed: int) -> Population:
    """Draw the whole population for ``period``; deterministic for a given seed."""
    if persons < 50:
        raise ValueError("--persons must be at least 50 for the registers to be coherent")
    rng = np.random.default_rng([seed, persons])
    codes = Codes.from_contracts(contracts)
    n = persons
    cross_border = rng.random(n) >= RESIDENT_SHARE
    country = np.array(list(CROSS_BORDER_COUNTRY))[_choice(rng, CROSS_BORDER_COUNTRY, n)]
    months_after_start = len(period)
    age = np.where(cross_border, rng.uniform(20, 64, n), _draw_ages(rng, n))
    # A few residents are born during the period: negative ages.
    newborn = ~cross_border & (rng.random(n) < 0.011 * months_after_start / 12)
    age = np.where(newborn, -rng.uniform(0, months_after_start / 12, n), age)
    birth_date = period.start - _years(age)
    unknown_day = ~newborn & (rng.random(n) < 0.002)
    birth_date = np.where(unknown_day, birth_date.astype("datetime64[M]").astype("datetime64[D]"), birth_date)
    sex = np.where(rng.random(n) < np.where(cross_border, 0.38, 0.5), 2, 1).astype(np.int8)
    role = _assign_roles(rng, age, cross_border)
    citizenship = _citizenship(rng, codes, cross_border, country)

    foreign_resident = ~cross_border & (citizenship != 0)
    naturalised = foreign_resident & (rng.random(n) < 0.015 * months_after_start / 12)
    naturalised_month = np.where(naturalised, rng.integers(0, months_after_start, n), NEVER).astype(np.int32)

    entry_month = np.where(newborn, _month_index(birth_date, period), 0)
    arrives = ~newborn & (rng.random(n) < 0.04 * months_after_start / 12)
    entry_month = np.where(arrives, rng.integers(1, months_after_start, n) if months_after_start > 1 else 0, entry_month)
    mortality = np.clip(0.0004 * np.exp(0.085 * (age - 30)), 0, 0.5) + np.where(cross_border, 0.04, 0.02)
    leaves = rng.random(n) < mortality * months_after_start / 12
    exit_month = np.where(leaves, np.maximum(entry_month, rng.integers(0, months_after_start, n)), NEVER)
    exit_date = np.where(exit_month < NEVER, period.month_ends[np.minimum(exit_month, len(period) - 1)], NAT)
    retire_date = birth_date + _years(65)
    retirement_month = np.where(role == RETIREE, -1, _month_index(retire_date, period) + 1).astype(np.int32)

    home, moved_month, new_commune, house_number, street = _households(rng, codes, months_after_start, country, cross_border)
    household = np.arange(n)
    partner = _pair_couples(rng, age, sex, ~cross_border)
    has_partner = partner >= 0
    household = np.where(has_partner & (sex == 2), partner, household)  # a couple lives at his address
    couple_since = np.where(has_partner, period.start - _years(rng.uniform(0, 30, n)), NAT)
    couple_since = np.maximum(couple_since, birth_date + _years(20))
    couple_since = np.where(has_partner & (sex == 2), couple_since[np.maximum(partner, 0)], couple_since)
    couple_relation = np.where(rng.random(n) < 0.75, 0, 1)
    couple_relation = np.where(has_partner & (sex == 2), couple_relation[np.maximum(partner, 0)], couple_relation)
    mother, father = _assign_parents(rng, birth_date, sex, ~cross_border, role, partner, ~cross_border & (age < 20))
    has_mother = mother >= 0
    household = np.where(has_mother, household[np.maximum(mother, 0)], household)
    citizenship = np.where(has_mother & (rng.random(n) < 0.9), citizenship[np.maximum(mother, 0)], citizenship)
    entry_month = np.where(has_mother & ~newborn, np.maximum(entry_month, entry_month[np.maximum(mother, 0)]), entry_month)
    # Nobody outlives their stay in the registers before their mother arrives; children leave with her.
    exit_month = np.where(has_mother, np.minimum(exit_month, exit_month[np.maximum(mother, 0)]), exit_month)
    exit_date = np.where(exit_month < NEVER, period.month_ends[np.minimum(exit_month, len(period) - 1)], NAT)

    employer_count = max(30, n // 12)
    number, nace, legal, employer_commune, employer_since = _employers(rng, codes, employer_count, period)
    employer_weights = 1.0 / np.arange(1, employer_count + 1) ** 0.9
    employer_weights /= employer_weights.sum()
    jobs = _job_spells(rng, n, role, birth_date, period, employer_weights, codes, exit_date, retire_date)
    # Cross-border workers without a job leave the Luxembourg registers at the end of their job.
    last_end, open_ended = _last_job_end(jobs, n)
    jobless_cross_border = cross_border & (role == EMPLOYEE) & ~open_ended & ~np.isnat(last_end)
    exit_month = np.where(jobless_cross_border, np.minimum(exit_month, _month_index(last_end, period)), exit_month)

    employee_mask = role == EMPLOYEE
    # Long illness episodes (about 2% of employees a year), some already running when the period starts.
    sick = employee_mask & (rng.random(n) < 0.02 * (months_after_start + 12) / 12)
    window = (period.end - period.start).astype(int) + 366
    sick_start = np.where(sick, period.start - np.timedelta64(365, "D") + rng.integers(0, window, n).astype("timedelta64[D]"), NAT)
    sick_days = np.round(80 + rng.lognormal(4.2, 0.7, n)).astype("timedelta64[D]")
    sick_end = np.where(sick, sick_start + sick_days, NAT)
    sick_reason = np.where(rng.random(n) < 0.12, 1, 0)
    chapters = codes.diagnosis_chapters
    chapter_pick = rng.choice(["XIII", "V", "II", "IX", "XIX"], size=n, p=[0.35, 0.3, 0.15, 0.1, 0.1])
    sick_chapter = np.where(sick_reason == 1, "XIX", chapter_pick)
    assert set(np.unique(sick_chapter)) <= set(chapters)
    reclassified = sick & (sick_days > np.timedelta64(180, "D")) & (rng.random(n) < 0.35)
    reclass_date = np.where(reclassified, sick_end - np.timedelta64(10, "D"), NAT)
    reclass_date = np.where(reclass_date <= period.end, reclass_date, NAT)
    reclass_external = rng.random(n) < 0.4
    reclass_reduction = rng.choice([0, 0, 10, 20, 25, 40, 50, 75], size=n)
    # An external reclassification ends the job.
    external_end = np.where(~np.isnat(reclass_date) & reclass_external, reclass_date, NAT)
    cut = ~np.isnat(external_end[jobs.person]) & (np.isnat(jobs.end) | (jobs.end > external_end[jobs.person]))
    cut &= jobs.start <= external_end[jobs.person]
    jobs.end = np.where(cut, external_end[jobs.person], jobs.end)
    late_start = ~np.isnat(external_end[jobs.person]) & (jobs.start > external_end[jobs.person])
    jobs = Jobs(*(getattr(jobs, f)[~late_start] for f in Jobs.__dataclass_fields__))

    parent_of_young = np.zeros(n, dtype=bool)
    young = has_mother & (birth_date > period.start - _years(4))
    parent_of_young[mother[young]] = True
    parent_of_young[father[young & (father >= 0)]] = True
    takes_leave = parent_of_young & employee_mask & (rng.random(n) < np.where(sex == 2, 0.3, 0.12))
    parental_leave_month = np.where(takes_leave, rng.integers(0, months_after_start, n), NEVER).astype(np.int32)

    pension = np.where(
        (role == RETIREE) | (retirement_month < months_after_start),
        np.round(rng.lognormal(np.log(3000), 0.45, n), 2),
        0.0,
    )
    care = (age >= 75) & (rng.random(n) < 0.1)

    provider_count = max(24, n // 150)
    provider_service = np.arange(provider_count) % len(PROVIDER_SERVICES)
    provider_code = (90_000_000 + provider_service * 1_000_000 + np.arange(provider_count) * 7).astype(str)
    last_name = rng.integers(0, len(LAST_NAMES), n)
    last_name = np.where(has_mother, last_name[np.maximum(mother, 0)], last_name)
    first_name = rng.integers(0, min(len(FIRST_NAMES_MALE), len(FIRST_NAMES_FEMALE)), n)
    word = np.array(COMPANY_WORDS)[rng.integers(0, len(COMPANY_WORDS), employer_count)]
    owner = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), employer_count)]
    suffix = np.array([COMPANY_SUFFIX_BY_LEGAL_FORM[f] for f in legal])
    employer_name = np.char.strip(np.char.add(np.char.add(np.char.add(owner, " "), np.char.add(word, " ")), suffix))
    provider_owner = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), provider_count)]
    provider_name = np.char.add(np.array([PROVIDER_TITLES[s] for s in provider_service]), provider_owner)
    affiliated_since = np.maximum(birth_date, period.start - _years(rng.uniform(0, 30, n)))
    affiliated_since = np.where(entry_month > 0, period.month_starts[np.clip(entry_month, 0, len(period) - 1)], affiliated_since)
    affiliated_since = np.maximum(affiliated_since, birth_date)

    return Population(
        period=period, codes=codes, matricule=_matricules(birth_date, unknown_day), birth_date=birth_date,
        sex=sex, cross_border=cross_border, role=role, citizenship=citizenship,
        naturalised_month=naturalised_month, household=household, entry_month=entry_month.astype(np.int32),
        exit_month=exit_month.astype(np.int32), affiliated_since=affiliated_since,
        retirement_month=retirement_month, last_name=last_name, first_name=first_name, pension=pension, care=care,
        home_commune=home, moved_month=moved_month, new_commune=new_commune, house_number=house_number,
        street=street, partner=partner, couple_since=couple_since, couple_relation=couple_relation,
        mother=mother, father=father, jobs=jobs, parental_leave_month=parental_leave_month,
        sick_start=sick_start, sick_end=sick_end, sick_reason=sick_reason, sick_chapter=sick_chapter,
        reclass_date=reclass_date, reclass_external=reclass_external, reclass_reduction=reclass_reduction,
        employer_number=number, employer_nace=nace, employer_legal_form=legal, employer_commune=employer_commune,
        employer_since=employer_since, employer_name=employer_name, provider_code=provider_code,
        provider_service=provider_service, provider_name=provider_name,
    )
