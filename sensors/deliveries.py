"""Sensor ``register_deliveries``: a new or changed delivery file runs its register and month.

One run per month with new or changed files. It selects the changed registers and the
delivered registers that reference them (their reference checks read the changed
register, so a re-delivered enterprises file re-validates that month's jobs), and
Dagster runs them in reference order. The run key is the month and the sha256 of every
changed file, so the same files never run twice and a corrected re-delivery (same
name, new content) runs again. The cursor remembers each file's size, modification
time and hash, so a tick hashes only files that changed since the last one. A file
whose content is already the partition's last materialisation (for example after
``lmdp refresh``) starts nothing.
"""

import hashlib
import json

import dagster as dg

from assets.partitions import MONTHLY_PARTITIONS
from assets.registers import register_key
from assets.resources import PlatformResource
from lmdp_pipeline.files import sha256_of

from .jobs import register_refresh


def _already_stored(instance: dg.DagsterInstance, register: str, month: str, sha256: str) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=register_key(register), asset_partitions=[month]), limit=1
    ).records
    if not records:
        return False
    metadata = records[0].asset_materialization.metadata
    return getattr(metadata.get("sha256"), "value", None) == sha256


@dg.sensor(
    job=register_refresh,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Runs register_refresh for a month when a delivery file appears or changes in landing/: the changed "
        "registers, and the delivered registers whose references depend on them."
    ),
)
def register_deliveries(context: dg.SensorEvaluationContext, platform: PlatformResource):
    seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
    contracts = platform.contracts()
    valid_months = set(MONTHLY_PARTITIONS.get_partition_keys(dynamic_partitions_store=context.instance))
    current: dict[str, list] = {}
    delivered: dict[str, set[str]] = {}  # month -> registers with a file
    changed: dict[str, dict[str, str]] = {}  # month -> register -> sha256
    for path, register, month in platform.paths.deliveries():
        if register not in contracts.registers:
            continue
        delivered.setdefault(month, set()).add(register)
        stat = path.stat()
        previous = seen.get(str(path))
        if previous and previous[:2] == [stat.st_mtime_ns, stat.st_size]:
            current[str(path)] = previous
            continue
        digest = sha256_of(path)
        current[str(path)] = [stat.st_mtime_ns, stat.st_size, digest]
        if previous and previous[2] == digest:
            continue
        if month not in valid_months:
            context.log.warning(f"{path.name}: month {month} is outside the register partitions; not run")
            continue
        if not _already_stored(context.instance, register, month, digest):
            changed.setdefault(month, {})[register] = digest
    for month, registers in sorted(changed.items()):
        selected = set(registers) | {d for r in registers for d in contracts.dependents[r] if d in delivered[month]}
        fingerprint = ",".join(f"{r}:{registers[r]}" for r in sorted(registers))
        yield dg.RunRequest(
            run_key=f"{month}:{hashlib.sha256(fingerprint.encode()).hexdigest()}",
            partition_key=month,
            asset_selection=[register_key(r) for r in sorted(selected)],
            tags={"lmdp/deliveries": ",".join(sorted(registers))},
        )
    context.update_cursor(json.dumps(current))
