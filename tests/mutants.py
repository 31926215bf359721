"""Planted bugs in the privacy-critical code, and the tests that must catch each: ``make mutants``.

A test suite is as good as the bugs it catches. Each mutant below is one small,
plausible mistake (a bound dropped, a check skipped, a key derived instead of drawn);
the runner copies the tracked files to a temporary folder, plants one mutant at a
time there (never in the working tree), runs the tests named beside it, and reports
each mutant caught or SURVIVED. It exits non-zero when one survives or when a pattern
no longer matches the code (update the catalogue with the code it describes).

Usage: ``python -m tests.mutants [MUTANT ...]`` (all by default). It takes a while:
each mutant runs its tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S = "lmdp_pipeline/projects/"
O = "lmdp_pipeline/outputs/"

MUTANTS = [
    ("period-one-month-longer", S+"scope.py", 'return {"period_from": str(period.first), "period_to": str(period.last)}', 'return {"period_from": str(period.first), "period_to": str(period.last + 1)}', "tests/test_scope.py tests/test_extract.py"),
    ("not-in-as-in", S+"scope.py", 'return test if operator == "in" else f"NOT {test}"', 'return test', "tests/test_scope.py"),
    ("first-condition-only", S+"scope.py", "for position, (column, condition) in enumerate(block.where.items())", "for position, (column, condition) in enumerate(list(block.where.items())[:1])", "tests/test_scope.py"),
    ("expiry-wrong-date-lifecycle", S+"lifecycle.py", 'return approval.status == "revoked" or approval.expires_on < today', 'return approval.status == "revoked" or approval.expires_on < approval.approved_on', "tests/test_lifecycle.py tests/test_project_assets.py"),
    ("expiry-wrong-date-rules", S+"rules.py", "if approval.expires_on < today:", "if approval.expires_on < approval.approved_on:", "tests/test_lifecycle.py tests/test_approvals.py"),
    ("publish-when-some-fail", S+"build.py", "if any(c.blocks for c in checks):", "if all(c.blocks for c in checks):", "tests/test_extract.py"),
    ("warning-blocks-nothing-else", S+"checks.py", "return bool(self.problems) and self.severity == ERROR", "return bool(self.problems) and self.name != 'disclosure_risk'", "tests/test_risk_build.py"),
    ("risk-accepted-without-acceptance", "lmdp_pipeline/risk/assess.py", "return bool(self.breaches) and self.acceptance is not None and not self.beyond_acceptance and not self.integrity", "return bool(self.breaches) and not self.integrity", "tests/test_risk_build.py"),
    ("risk-integrity-acceptable", "lmdp_pipeline/risk/assess.py", "return bool(self.breaches) and self.acceptance is not None and not self.beyond_acceptance and not self.integrity", "return bool(self.breaches) and self.acceptance is not None and not self.beyond_acceptance", "tests/test_risk_build.py tests/test_risk_measures.py"),
    ("share-at-risk-rule-off", "lmdp_pipeline/risk/verdict.py", "if figures.share_at_risk > policy.max_share_at_risk:", "if figures.share_at_risk > 1:", "tests/test_risk_measures.py tests/test_risk_build.py tests/test_risk_lattice.py"),
    ("reidentification-rule-off", "lmdp_pipeline/risk/verdict.py", "if worst is not None and worst.reidentification_rate > policy.max_reidentification_rate:", "if False:", "tests/test_risk_measures.py tests/test_risk_build.py tests/test_risk_lattice.py"),
    ("respondents-rule-off", "lmdp_pipeline/risk/verdict.py", "if figures.share_of_respondents_at_risk > policy.max_share_of_respondents_at_risk:", "if False:", "tests/test_risk_respondents.py tests/test_risk_build.py"),
    ("respondents-among-everyone", "lmdp_pipeline/risk/measures.py", "return self.respondents_at_risk / self.respondents if self.respondents else 0.0", "return self.respondents_at_risk / self.persons if self.persons else 0.0", "tests/test_risk_respondents.py"),
    ("acceptance-ceilings-ignored", "lmdp_pipeline/risk/assess.py", "return bool(self.breaches) and self.acceptance is not None and not self.beyond_acceptance and not self.integrity", "return bool(self.breaches) and self.acceptance is not None and not self.integrity", "tests/test_risk_build.py"),
    ("acceptance-covers-unnamed-rules", "lmdp_pipeline/risk/verdict.py", "        if ceiling is None:\n", "        if ceiling is None:\n            continue\n", "tests/test_risk_build.py"),
    ("acceptance-ceiling-within-policy-allowed", S+"rules.py", "if ceiling is not None and ceiling <= limit:", "if False:", "tests/test_approvals.py"),
    ("project-output-threshold-ignored", "lmdp_pipeline/outputs/examination.py", 'return policy.model_copy(update={"threshold": own}) if own is not None and own > policy.threshold else policy', "return policy", "tests/test_outputs_release.py"),
    ("memo-blind-to-data", "lmdp_pipeline/risk/measures.py", "described = [sorted(digests), self.person_count", "described = [self.person_count", "tests/test_risk_memo.py"),
    ("memo-nodes-not-remeasured", "lmdp_pipeline/risk/lattice.py", "        if breaches(figures, model, policy):\n            continue\n", "", "tests/test_risk_memo.py tests/test_risk_lattice.py"),
    ("table-units-are-the-extracts", "lmdp_pipeline/risk/measures.py", 'f"count(*) FILTER (WHERE in{i})"', 'f"count(*)"', "tests/test_risk_measures.py"),
    ("volume-of-one-chunk", "lmdp_pipeline/ingest/validate.py", "validator.run(suite, _frame(chunk, coded))", "validator.run(suite, _frame(chunk, coded).assign(**{DELIVERY_ROWS: chunk.num_rows}))", "tests/test_ingest.py"),
    ("volume-on-no-rows", "lmdp_pipeline/ingest/validate.py", "_frame(pa.Table.from_pylist([{ROW: 0, DELIVERY_ROWS: 0}], schema=reader.schema), coded)", "reader.schema.empty_table().to_pandas()", "tests/test_ingest.py"),
    ("risk-order-left-off", "lmdp_pipeline/risk/assess.py", "        with contextlib.suppress(duckdb.Error):\n            con.execute(\"RESET preserve_insertion_order\")\n        raise", "        raise", "tests/test_risk_measures.py"),
    ("rare-cells-uniques-only", "lmdp_pipeline/risk/measures.py", '"SELECT month, combo FROM risk_cm WHERE persons < $k"', '"SELECT month, combo FROM risk_cm WHERE persons < 2"', "tests/test_risk_measures.py"),
    ("rare-table-cells-uniques-only", "lmdp_pipeline/risk/measures.py", 'f"SELECT month, kid FROM risk_sc{i} WHERE units < $k"', 'f"SELECT month, kid FROM risk_sc{i} WHERE units < 2"', "tests/test_risk_measures.py"),
    ("rare-values-never", "lmdp_pipeline/risk/measures.py", "HAVING count(DISTINCT value) < $l", "HAVING count(DISTINCT value) < 1", "tests/test_risk_measures.py"),
    ("below-k-inclusive", "lmdp_pipeline/risk/measures.py", "coalesce(sum(persons) FILTER (WHERE persons < $k), 0) AS below FROM risk_classes", "coalesce(sum(persons) FILTER (WHERE persons <= $k), 0) AS below FROM risk_classes", "tests/test_risk_measures.py tests/test_risk_lattice.py"),
    ("scan-13-digits-only", S+"checks.py", 'DIGIT_RUN = r"\\p{Nd}{8,}"', 'DIGIT_RUN = r"\\p{Nd}{13,}"', "tests/test_extract.py"),
    ("scan-ascii-digits-only", S+"checks.py", 'DIGIT_RUN = r"\\p{Nd}{8,}"', 'DIGIT_RUN = r"[0-9]{8,}"', "tests/test_extract.py"),
    ("external-ascii-digits-only", S+"external.py", 'DIGIT_RUN = r"\\p{Nd}{8,}"', 'DIGIT_RUN = r"[0-9]{8,}"', "tests/test_external.py"),
    ("zone-population-only", S+"checks.py", 'zone = " UNION ALL ".join(f"SELECT identifier FROM {m}" for m in facts.identifier_maps)', 'zone = " UNION ALL ".join(f"SELECT identifier FROM {m}" for m in facts.identifier_maps[:1])', "tests/test_extract.py"),
    ("skip-external-tables", S+"checks.py", "if t not in DOCUMENTATION_TABLES]", "if t not in DOCUMENTATION_TABLES and not t.startswith('external_')]", "tests/test_extract.py tests/test_external.py"),
    ("period-first-register-only", S+"checks.py", "for table, columns in plan.tables().items():\n        month = plan.month_column(table)", "for table, columns in list(plan.tables().items())[:1]:\n        month = plan.month_column(table)", "tests/test_extract.py"),
    ("period-lower-bound-only", S+"checks.py", 'WHERE {q(month)} IS NULL OR {q(month)} < ? OR {q(month)} > ?", [first, last]', 'WHERE {q(month)} IS NULL OR {q(month)} < ?", [first]', "tests/test_extract.py"),
    ("month-level-unchecked", S+"checks.py", '''    if level.truncate == "month":
        return "NOT regexp_full_match(value, '[0-9]{4}-[0-9]{2}')", []''', '''    if level.truncate == "month":
        return None''', "tests/test_extract.py"),
    ("band-unchecked", S+"checks.py", '''    if level.band is not None and level.band.width is not None:
        return''', '''    if level.band is not None and level.band.width is not None:
        return None
        return''', "tests/test_extract.py"),
    ("restricted-not-rechecked", S+"checks.py", "    for use in uses_needing_justification(plan.approval, plan.contracts):", "    for use in []:", "tests/test_extract.py"),
    ("unapproved-file-linked", "lmdp_pipeline/projects/external.py", "if sha256 and (unapproved := unapproved_file(name, dataset, sha256)):", "if False:", "tests/test_external.py"),
    ("unapproved-file-passes-the-check", S+"lifecycle.py", "elif unapproved := unapproved_file(name, dataset, cached_sha256(file, cache)):", "elif False:", "tests/test_external.py"),
    ("own-values-summed-freely", "lmdp_pipeline/outputs/own_columns.py", "    if valued:\n", "    if False:\n", "tests/test_outputs_own_columns.py"),
    ("magnitude-rows-apart-ignored", "lmdp_pipeline/outputs/differencing.py", 'c.n + coalesce(m.n, 0) - 2 * c.shared + {"c.shared_apart" if table.magnitude else "0"} AS diff', "c.n + coalesce(m.n, 0) - 2 * c.shared AS diff", "tests/test_outputs_differencing.py"),
    ("magnitude-rows-apart-first-mask-only", "lmdp_pipeline/outputs/differencing.py", 'f"bit_or(xor(m{c}, {every_bit})) AS d{c}"', 'f"bit_or(xor(m{c}, {every_bit if c == 0 else 0})) AS d{c}"', "tests/test_outputs_differencing.py"),
    ("related-outsiders-named", S+"build.py", "elif variable.identifier is IdentifierKind.person:", "elif False:", "tests/test_extract.py"),
    ("strangers-person-id-only", S+"checks.py", "[list(PERSON_COLUMNS)])", "[[PERSON_ID]])", "tests/test_extract.py"),
    ("null-person-passes", S+"checks.py", "            if nobody:", "            if False:", "tests/test_extract.py"),
    ("hmac-with-key-id", S+"pseudonyms.py", "        hmac_pads(key.material),", "        hmac_pads(key.key_id.encode()),", "tests/test_extract.py tests/test_pseudonyms.py"),
    ("derived-project-keys", "lmdp_pipeline/keys.py", 'secrets.token_bytes(KEY_BYTES))\n        try:', 'hashlib.sha256(self._master.material + project.encode()).digest())\n        try:', "tests/test_keys.py"),
    ("fixed-nonce", "lmdp_pipeline/keys.py", "nonce = secrets.token_bytes(NONCE_BYTES)", "nonce = bytes(NONCE_BYTES)", "tests/test_keys.py"),
    ("near-unique-never", S+"external.py", "NEAR_UNIQUE_SHARE = 0.9", "NEAR_UNIQUE_SHARE = 1.5", "tests/test_external.py"),
    ("near-unique-counts-blanks", S+"external.py", '''f"WHERE trim({loaded.positions[column]}) <> '' AND ({published})"''',
     '''f"WHERE ({published})"''', "tests/test_external.py"),
    ("retirement-ignores-releases", S+"lifecycle.py", '''held(paths.output_lock(project), f"retirement of {project}", on_wait=on_wait)):''',
     '''held(paths.locks / "retirement.lock", f"retirement of {project}", on_wait=on_wait)):''', "tests/test_lifecycle.py"),
    ("own-columns-reviewed-never", "lmdp_pipeline/outputs/own_columns.py", "    if len(uses) > 1:", "    if False:",
     "tests/test_outputs_own_columns.py"),
    ("own-columns-filters-ignored", "lmdp_pipeline/outputs/own_columns.py", "return (grouping, conditions) if grouping or conditions else None",
     "return (grouping, ()) if grouping else None", "tests/test_outputs_own_columns.py"),
    ("near-unique-counts-dropped-rows", S+"external.py", '''<> '' AND ({published})"''', '''<> ''"''', "tests/test_external.py"),
    ("external-columns-known-only-if-declared", "lmdp_pipeline/risk/model.py",
     "QuasiIdentifier(table, c, AS_DECLARED) for c in dataset.columns)",
     "QuasiIdentifier(table, c, AS_DECLARED) for c, column in dataset.columns.items() if column.type == 'string')",
     "tests/test_external.py"),
    ("content-rules-skip-decimals", S+"external.py", "        for what, rule in CONTENT_RULES.items():", "        for what, rule in (CONTENT_RULES.items() if dataset.columns[column].type != 'decimal' else []):", "tests/test_external.py"),
    ("matricule-windows-skipped", S+"external.py", "        if matricules:", "        if False:", "tests/test_external.py"),
    ("own-matricules-skipped", S+"external.py", "        if own:", "        if False:", "tests/test_external.py"),
    ("declared-values-unchecked", S+"external.py", "    if column.values is not None:\n        allowed", "    if False:\n        allowed", "tests/test_external.py"),
    ("warehouse-not-private", "lmdp_pipeline/ingest/store.py", "        os.chmod(partial, PRIVATE_FILE)", "        pass", "tests/test_register_assets.py tests/test_ingest.py"),
    ("rows-not-sorted", S+"build.py", 'self.con.execute(f"CREATE TABLE {q(table)} AS SELECT * FROM ({select}) ORDER BY {order}", params or {})', 'self.con.execute(f"CREATE TABLE {q(table)} AS SELECT * FROM ({select})", params or {})', "tests/test_extract.py tests/test_external.py"),
    ("row-order-check-off", S+"checks.py", '"row_order": _row_order(con, plan, facts),', '"row_order": [],', "tests/test_extract.py"),
    ("still-authorised-noop", S+"lifecycle.py", "    def still_authorised() -> None:\n", "    def still_authorised() -> None:\n        return\n", "tests/test_lifecycle.py"),
    ("tombstone-ignored-on-load", "lmdp_pipeline/keys.py", "        path = self.key_file(project)\n        self._refuse_destroyed(project)\n        if not path.exists():", "        path = self.key_file(project)\n        if not path.exists():", "tests/test_keys.py"),
    ("key-history-ignored", S+"lifecycle.py", "        if history:\n            raise KeyLost(", "        if False:\n            raise KeyLost(", "tests/test_lifecycle.py tests/test_project_assets.py"),
    ("project-id-search", "lmdp_pipeline/paths.py", "not _PROJECT_ID.fullmatch(text)", "not _PROJECT_ID.search(text)", "tests/test_lifecycle.py tests/test_cli.py"),
    ("audit-prev-unchecked", "lmdp_pipeline/audit.py", '            if entry.get("prev") != previous:', '            if False:', "tests/test_audit.py"),
    ("audit-head-unchecked", "lmdp_pipeline/audit.py", "        if recorded_head.sequence > sequence:", "        if False:", "tests/test_audit.py"),
    ("blank-justification-ok", S+"approval.py", "    if len(words) < JUSTIFICATION_WORDS:", "    if False:", "tests/test_approvals.py"),
    ("conditions-need-nothing", S+"rules.py", "                if is_finer_than_default(variable, needed):", "                if False:", "tests/test_approvals.py"),
    ("restricted-population-register-free", S+"rules.py", '''        if contract.protection == Protection.restricted:
            uses.append(Use(block.register''', '''        if False:
            uses.append(Use(block.register''', "tests/test_approvals.py"),
    ("missing-month-ok", S+"rules.py", "        if missing:\n            problems.append(f\"field period:", "        if False:\n            problems.append(f\"field period:", "tests/test_approvals.py tests/test_extract.py"),
    ("aliases-allowed", S+"approval.py", "        if isinstance(event, yaml.AliasEvent) or getattr(event, \"anchor\", None) is not None:", "        if False:", "tests/test_approvals.py"),
    ("duplicate-keys-allowed", S+"approval.py", "            if key in seen:", "            if False:", "tests/test_approvals.py"),
    ("header-echoed", "lmdp_pipeline/ingest/structure.py", 'return columns[index] if columns[index] in known else f"#{index + 1}"', "return columns[index]", "tests/test_ingest.py"),
    ("undeclared-external-named", S+"external.py", '            problems.append(f"column {index + 1} of the header is not declared', '            problems.append(f"column {field!r} of the header is not declared', "tests/test_external.py"),
    ("retire-keeps-key", S+"lifecycle.py", "        key_id = folder.destroy(project, reason)", "        key_id = folder.key_id(project)", "tests/test_lifecycle.py tests/test_project_assets.py"),
    ("withdrawn-ignored", S+"lifecycle.py", "        elif approval is None and published:", "        elif False:", "tests/test_lifecycle.py tests/test_project_assets.py"),
    ("fingerprint-ignored", S+"lifecycle.py", "    if expected_fingerprint and checked.fingerprint != expected_fingerprint:", "    if False:", "tests/test_project_assets.py"),
    ("ingest-leftovers-kept", "lmdp_pipeline/ingest/__init__.py", "        remove_leftovers(paths, register, month)\n", "", "tests/test_ingest.py"),
    ("build-leftovers-kept", S+"lifecycle.py", "    remove_leftovers(paths, project)\n    path = paths.approval_file(project)", "    path = paths.approval_file(project)", "tests/test_lifecycle.py"),
    ("umask-not-private", "lmdp_pipeline/paths.py", "    os.umask(PRIVATE_UMASK)\n    paths.home.mkdir", "    paths.home.mkdir", "tests/test_cli.py"),
    # output checking (lmdp_pipeline/outputs/) and the researchers' exports (lmdp_pipeline/exports/)
    ("threshold-nine-published", O+"rules.py", "        if cell.persons < policy.threshold:\n            cell.reasons.append(THRESHOLD)",
     "        if cell.persons < policy.threshold - 1:\n            cell.reasons.append(THRESHOLD)", "tests/test_outputs_rules.py"),
    ("p-percent-keeps-second", O+"rules.py", "return (cell.total - largest - second) / largest < policy.p_percent",
     "return (cell.total - largest) / largest < policy.p_percent", "tests/test_outputs_rules.py"),
    ("dominance-top-two-only", O+"tables.py", 'params: dict[str, Any] = {"pooled_r": pooled_rows, "top": max(top_n, 2)}',
     'params: dict[str, Any] = {"pooled_r": pooled_rows, "top": 2}', "tests/test_outputs_rules.py"),
    ("structural-zero-any-variable", O+"rules.py", "return any(all(key.get(variable) == label for variable, label in zero.items()) for zero in declared)",
     "return any(any(key.get(variable) == label for variable, label in zero.items()) for zero in declared)", "tests/test_outputs_rules.py"),
    ("categories-count-rows", O+"tables.py", 'f"SELECT {axis}, CAST({axis} AS VARCHAR), count(DISTINCT person_id) FROM {q(base)} GROUP BY {axis} "',
     'f"SELECT {axis}, CAST({axis} AS VARCHAR), count(*) FROM {q(base)} GROUP BY {axis} "', "tests/test_outputs_rules.py"),
    ("check-published-zero-ignored", O+"checks.py", "        if cell.persons == 0 and policy.zeros_are_disclosive and not structural(cell, cells, table.declared_zeros):",
     "        if False:", "tests/test_outputs_release.py"),
    ("check-lp-cells-may-be-negative", O+"checks.py", 'b_eq=constants, bounds=(0, None), method="highs")',
     'b_eq=constants, bounds=(None, None), method="highs")', "tests/test_outputs_release.py"),
    ("differencing-nine-apart-safe", O+"differencing.py", "WHERE (exact AND diff BETWEEN 1 AND $t - 1)",
     "WHERE (exact AND diff BETWEEN 1 AND $t - 2)", "tests/test_outputs_differencing.py"),
    ("differencing-fallback-counts-only", O+"differencing.py", "OR (NOT exact AND (n_new <> n_then OR h_new <> h_then) AND abs(n_new - n_then) < $t)",
     "OR (NOT exact AND n_new <> n_then AND abs(n_new - n_then) < $t)", "tests/test_outputs_differencing.py"),
    ("differencing-latest-release-only", O+"ledger.py", "    for path in paths.output_ledger_records(project):\n        record = json.loads",
     "    for path in paths.output_ledger_records(project)[-1:]:\n        record = json.loads", "tests/test_outputs_differencing.py"),
    ("attachment-first-pseudonym-column-only", O+"attachments.py", "for c in table.values() if c.pseudonym]",
     "for c in table.values() if c.pseudonym][:1]", "tests/test_outputs_release.py"),
    ("attachment-extension-case-sensitive", O+"attachments.py", "    if path.suffix.lower() in policy.blocked_extensions:",
     "    if path.suffix in policy.blocked_extensions:", "tests/test_outputs_release.py"),
    ("evidence-request-block-released", O+"release.py", "    if full:\n        request |= {",
     "    if True:\n        request |= {", "tests/test_outputs_evidence.py"),
    ("file-replaced-during-the-read-linked", S+"external.py", "if sha256 and sha256_of(path) != sha256:", "if False:", "tests/test_external.py"),
    ("exports-after-expiry", "lmdp_pipeline/exports/publish.py", "    if is_retired(approval, today):\n        raise ExportError",
     "    if False:\n        raise ExportError", "tests/test_exports.py"),
]


def _copy_tracked(target: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def main(selected: list[str]) -> int:
    unknown = set(selected) - {m[0] for m in MUTANTS}
    if unknown:
        print(f"unknown mutants: {', '.join(sorted(unknown))}")
        return 2
    failures = 0
    with tempfile.TemporaryDirectory(prefix="lmdp-mutants-") as folder:
        copy = Path(folder)
        _copy_tracked(copy)
        for name, path, old, new, tests in MUTANTS:
            if selected and name not in selected:
                continue
            file = copy / path
            original = file.read_text(encoding="utf-8")
            if original.count(old) != 1:
                print(f"{name:<40} STALE PATTERN (found {original.count(old)} times in {path})", flush=True)
                failures += 1
                continue
            file.write_text(original.replace(old, new), encoding="utf-8")
            started = time.monotonic()
            try:
                result = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests.split()],
                    cwd=copy, capture_output=True, text=True,
                )
            finally:
                file.write_text(original, encoding="utf-8")
            caught = result.returncode != 0
            failures += not caught
            print(f"{name:<40} {'caught' if caught else 'SURVIVED'} ({time.monotonic() - started:.0f} s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
