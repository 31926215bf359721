"""Pseudonyms: correct HMAC, stable within a project, unlinkable across projects and domains."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmdp_pipeline.projects import pseudonyms
from lmdp_pipeline.contracts import IdentifierKind
from lmdp_pipeline.keys import Keystore, MasterKey
from lmdp_pipeline.projects.pseudonyms import DOMAINS, PseudonymCollision, build_map, hmac_pads, hmac_sql, pseudonym_sql

RFC_4231 = [  # (key, data, HMAC-SHA256), test cases 1-4, 6, 7
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.fixture
def keystore(tmp_path):
    return Keystore(tmp_path / "keys", MasterKey(secrets.token_bytes(32), "test"))


def ids_table(con, name: str, ids: list[str]) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT unnest(?) AS matricule", [ids])


def mapping(con, table: str) -> dict[str, str]:
    return dict(con.execute(f"SELECT identifier, pseudonym FROM {table}").fetchall())


def synthetic_ids(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return sorted({f"{v:013d}" for v in rng.integers(10**12, 10**13 - 1, size=n)})


@pytest.mark.parametrize(("key", "data", "expected"), RFC_4231)
def test_sql_hmac_matches_rfc_4231(con, key, data, expected):
    assert con.execute(f"SELECT {hmac_sql('$message')}", {**hmac_pads(key), "message": data}).fetchone()[0] == expected


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.lists(st.text(alphabet="0123456789", min_size=1, max_size=13), min_size=1, max_size=20))
def test_pseudonym_is_truncated_hmac_of_domain_and_identifier(key, ids):
    con = duckdb.connect()
    sql = pseudonym_sql("x", IdentifierKind.person)
    got = con.execute(f"SELECT x, {sql} FROM unnest($ids) t(x)", {**hmac_pads(key), "ids": ids}).fetchall()
    for identifier, pseudonym in got:
        expected = hmac.new(key, DOMAINS[IdentifierKind.person] + identifier.encode(), hashlib.sha256).hexdigest()
        assert pseudonym == expected[:16]


def test_same_person_same_pseudonym_in_every_register_and_rebuild(con, keystore):
    key = keystore.create("P2026-001")
    ids = synthetic_ids(5_000)
    ids_table(con, "individuals", ids)
    ids_table(con, "jobs", ids[::3] + ids[::3])  # a register with repeats and a subset
    build_map(con, "individuals", "matricule", IdentifierKind.person, key, "map_individuals")
    build_map(con, "jobs", "matricule", IdentifierKind.person, key, "map_jobs")
    first, second = mapping(con, "map_individuals"), mapping(con, "map_jobs")
    assert all(second[i] == first[i] for i in second)
    build_map(con, "individuals", "matricule", IdentifierKind.person, keystore.load("P2026-001"), "map_rebuild")
    assert mapping(con, "map_rebuild") == first


def test_two_projects_share_no_pseudonym_for_the_same_persons(con, keystore):
    ids = synthetic_ids(500_000)
    ids_table(con, "persons", ids)
    build_map(con, "persons", "matricule", IdentifierKind.person, keystore.create("P2026-001"), "map_a")
    build_map(con, "persons", "matricule", IdentifierKind.person, keystore.create("P2026-002"), "map_b")
    shared = con.execute("SELECT count(*) FROM map_a JOIN map_b USING (pseudonym)").fetchone()[0]
    assert shared == 0


def test_domains_are_unrelated(con, keystore):
    key = keystore.create("P2026-001")
    ids = synthetic_ids(100_000)
    ids_table(con, "numbers", ids)
    build_map(con, "numbers", "matricule", IdentifierKind.person, key, "map_person")
    build_map(con, "numbers", "matricule", IdentifierKind.employer, key, "map_employer")
    same = con.execute(
        "SELECT count(*) FROM map_person p JOIN map_employer e ON p.pseudonym = e.pseudonym"
    ).fetchone()[0]
    assert same == 0


def test_fixed_width_lowercase_hex(con, keystore):
    ids_table(con, "sample_ids", synthetic_ids(1_000))
    build_map(con, "sample_ids", "matricule", IdentifierKind.person, keystore.create("P2026-001"), "map_some")
    widths = con.execute("SELECT DISTINCT length(pseudonym), bool_and(regexp_full_match(pseudonym, '[0-9a-f]{16}')) FROM map_some GROUP BY 1").fetchall()
    assert widths == [(16, True)]


def test_pseudonyms_keep_no_order_of_the_identifiers(con, keystore):
    ids_table(con, "ordered", synthetic_ids(100_000))
    build_map(con, "ordered", "matricule", IdentifierKind.person, keystore.create("P2026-001"), "map_ordered")
    rho = con.execute(
        """SELECT corr(rank_id, rank_pseudonym) FROM (
             SELECT rank() OVER (ORDER BY identifier) AS rank_id, rank() OVER (ORDER BY pseudonym) AS rank_pseudonym
             FROM map_ordered)"""
    ).fetchone()[0]
    assert abs(rho) < 0.02  # a truly random order gives |rho| ~ 0.003 here


def test_a_collision_stops_the_build(con, keystore, monkeypatch):
    monkeypatch.setattr(pseudonyms, "PSEUDONYM_HEX", 1)  # 16 possible values for 100 persons
    ids_table(con, "many", synthetic_ids(100))
    with pytest.raises(PseudonymCollision, match="person pseudonym collision"):
        build_map(con, "many", "matricule", IdentifierKind.person, keystore.create("P2026-001"), "map_many")


def test_the_key_is_never_in_the_sql_text(con, keystore):
    key = keystore.create("P2026-001")
    text = pseudonym_sql("matricule", IdentifierKind.person) + hmac_sql("x")
    for secret in (key.material.hex(), *(pad.hex() for pad in hmac_pads(key.material).values())):
        assert secret not in text
