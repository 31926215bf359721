"""The audit log's hash chain, tried by tampering with it every way an insider could."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from lmdp_pipeline.audit import AuditLog, Head, verify


@pytest.fixture
def log(tmp_path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit")
    for number in range(1, 7):
        audit.record("build_published", project=f"P2026-00{number % 3}", rows={"individuals": number})
    return audit


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text(encoding="utf-8").splitlines()


def rewrite(log: AuditLog, new_lines: list[str]) -> None:
    log.path.write_text("\n".join(new_lines) + "\n", encoding="utf-8")


def test_an_untouched_chain_verifies_and_reaches_its_head(log):
    head = log.head()
    assert head == Head(6, json.loads(lines(log)[-1])["hash"])
    verdict = verify(log.path, head)
    assert verdict.ok and verdict.lines == 6


def test_an_edited_line_is_named(log):
    edited = lines(log)
    edited[2] = edited[2].replace('"individuals":3', '"individuals":30')
    rewrite(log, edited)
    verdict = verify(log.path)
    assert not verdict.ok and verdict.bad_line == 3 and "does not match its hash" in verdict.message


def test_an_edited_line_with_its_hash_recomputed_breaks_the_next_link(log):
    from lmdp_pipeline.audit import canonical, line_hash

    edited = lines(log)
    entry = json.loads(edited[2])
    entry["project"] = "P2026-999"
    entry["hash"] = line_hash(entry)
    edited[2] = canonical(entry)
    rewrite(log, edited)
    verdict = verify(log.path)
    assert not verdict.ok and verdict.bad_line == 4 and "does not follow the line before it" in verdict.message


def test_a_deleted_line_is_named(log):
    rewrite(log, [line for number, line in enumerate(lines(log), start=1) if number != 4])
    verdict = verify(log.path)
    assert not verdict.ok and verdict.bad_line == 4 and "seq 5 where 4 was due" in verdict.message


def test_an_inserted_line_is_named(log):
    copy = lines(log)
    rewrite(log, copy[:2] + [copy[1]] + copy[2:])
    verdict = verify(log.path)
    assert not verdict.ok and verdict.bad_line == 3


def test_reordered_lines_are_named(log):
    copy = lines(log)
    copy[1], copy[2] = copy[2], copy[1]
    rewrite(log, copy)
    verdict = verify(log.path)
    assert not verdict.ok and verdict.bad_line == 2


def test_a_cut_end_is_caught_against_the_recorded_head(log):
    head = log.head()
    rewrite(log, lines(log)[:-2])
    assert verify(log.path).ok, "the rest of the chain is still a chain: only the recorded head reveals the cut"
    verdict = verify(log.path, head)
    assert not verdict.ok and "the log ends at seq 4 but Dagster recorded seq 6" in verdict.message


def test_a_rewritten_log_is_caught_against_the_recorded_head(log, tmp_path):
    head = log.head()
    forged = AuditLog(tmp_path / "forged")
    for number in range(1, 7):
        forged.record("build_published", project="P2026-000", rows={"individuals": 0})
    log.path.write_bytes(forged.path.read_bytes())
    assert verify(log.path).ok
    verdict = verify(log.path, head)
    assert not verdict.ok and "is not the line Dagster recorded" in verdict.message


def test_a_deleted_log_is_caught_against_the_recorded_head(log):
    head = log.head()
    log.path.unlink()
    assert not verify(log.path, head).ok


def test_garbage_is_named(log):
    rewrite(log, lines(log)[:3] + ["not json"] + lines(log)[3:])
    verdict = verify(log.path)
    assert not verdict.ok and verdict.bad_line == 4 and "not a JSON object" in verdict.message


def _write_many(directory: str, writer: int) -> None:
    audit = AuditLog(__import__("pathlib").Path(directory))
    for number in range(40):
        audit.record("delivery_accepted", register=f"writer{writer}", month=f"2024-{number % 12 + 1:02d}")


def test_concurrent_writers_never_fork_the_chain(tmp_path):
    directory = tmp_path / "audit"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.starmap(_write_many, [(str(directory), w) for w in range(4)])
    verdict = verify(directory / "audit.jsonl")
    assert verdict.ok and verdict.lines == 160


def test_each_line_reaches_its_listener(tmp_path):
    heard = []
    audit = AuditLog(tmp_path, on_append=heard.append)
    entry = audit.record("key_created", project="P2026-001", key_id="key-0123456789abcdef")
    assert heard == [entry] and entry["seq"] == 1 and entry["prev"] == "0" * 64
