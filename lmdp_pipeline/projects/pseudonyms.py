"""Project-scoped pseudonyms: HMAC-SHA256 under the project's key, computed in DuckDB SQL.

pseudonym = first 64 bits, as 16 lowercase hex characters, of
HMAC-SHA256(project key, domain || 0x00 || trimmed identifier), with one domain per
identifier kind (person, employer, provider), so a person number and an employer
number with the same digits get unrelated pseudonyms.

HMAC is written out in SQL (SHA-256 of the key XOR ipad with the message, then of the
key XOR opad with that digest): the padded keys are bound as statement parameters once,
DuckDB hashes the *distinct* identifiers on every core, and the result is joined back.
No Python loop touches an identifier. The padded keys are as secret as the key: they
travel only as parameters, never inside SQL text, and query logging stays off.

Sixteen hex characters keep extracts readable in every statistics package (Stata and R
have no 64-bit integers) while the birthday bound for a million persons stays near
1 in 36 million; every map is checked for collisions all the same.
"""

from __future__ import annotations

import hashlib

import duckdb

from ..contracts import IdentifierKind
from ..keys import ProjectKey

BLOCK_BYTES = 64
PSEUDONYM_HEX = 16
DOMAINS = {kind: f"lmdp/{kind.value}".encode("ascii") + b"\x00" for kind in IdentifierKind}


class PseudonymCollision(Exception):
    """Two identifiers got the same pseudonym; the build stops rather than merge two persons."""


def hmac_pads(key: bytes) -> dict[str, bytes]:
    """The inner and outer padded keys of HMAC-SHA256 (RFC 2104), as statement parameters."""
    if len(key) > BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK_BYTES, b"\x00")
    return {
        "lmdp_ipad": bytes(b ^ 0x36 for b in key),
        "lmdp_opad": bytes(b ^ 0x5C for b in key),
    }


def hmac_sql(message_blob: str) -> str:
    """SQL for the hex HMAC-SHA256 of a BLOB expression, keyed by the bound pads."""
    return f"sha256($lmdp_opad || unhex(sha256($lmdp_ipad || {message_blob})))"


def pseudonym_sql(identifier: str, kind: IdentifierKind) -> str:
    """SQL for the pseudonym of a text expression in the given domain."""
    domain = DOMAINS[kind].hex()
    message = f"(unhex('{domain}') || encode(trim({identifier})))"
    return f"left({hmac_sql(message)}, {PSEUDONYM_HEX})"


def build_map(
    con: duckdb.DuckDBPyConnection, source: str, column: str, kind: IdentifierKind, key: ProjectKey, table: str
) -> int:
    """Create table ``table(identifier, pseudonym)`` for the distinct non-null ``column`` of ``source``.

    ``source`` and ``column`` are SQL the caller composed from validated contract names.
    Returns the number of identifiers; raises PseudonymCollision if two share a pseudonym.
    """
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT identifier, {pseudonym_sql('identifier', kind)} AS pseudonym
            FROM (SELECT DISTINCT {column} AS identifier FROM {source} WHERE {column} IS NOT NULL)""",
        hmac_pads(key.material),
    )
    identifiers, distinct = con.execute(f"SELECT count(*), count(DISTINCT pseudonym) FROM {table}").fetchone()
    if distinct != identifiers:
        raise PseudonymCollision(
            f"{identifiers - distinct} {kind.value} pseudonym collision(s) under key {key.key_id}: "
            "the build stops; report it to the platform team"
        )
    return identifiers
