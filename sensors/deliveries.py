"""Sensor ``register_deliveries``: a new or changed delivery file runs its register and month.

The run key is the register, the month and the file's sha256, so the same file never
runs twice, and a corrected re-delivery (same name, new content) runs again. The cursor
remembers each file's size, modification time and hash, so a tick hashes only files
that changed since the last one. A file whose content is already the partition's last
materialisation (for example after ``lmdp refresh``) starts nothing.
"""

import json
import re

import dagster as dg

from assets.partitions import MONTHLY_PARTITIONS
from assets.registers import register_key
from assets.resources import PlatformResource
from lmdp_pipeline.ingest import sha256_of

from .jobs import register_refresh

DELIVERY_NAME = re.compile(r"^(?P<register>[a-z_]+)_(?P<month>\d{4}-\d{2})\.csv$")


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
    description="Runs register_refresh for a register and month when its delivery file appears or changes in landing/.",
)
def register_deliveries(context: dg.SensorEvaluationContext, platform: PlatformResource):
    seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
    registers = set(platform.contracts().registers)
    valid_months = set(MONTHLY_PARTITIONS.get_partition_keys(dynamic_partitions_store=context.instance))
    current: dict[str, list] = {}
    for path in sorted(platform.paths.landing.glob("*/*.csv")):
        match = DELIVERY_NAME.match(path.name)
        if not match or match["register"] != path.parent.name or match["register"] not in registers:
            continue
        register, month = match["register"], match["month"]
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
        if _already_stored(context.instance, register, month, digest):
            continue
        yield dg.RunRequest(
            run_key=f"{register}:{month}:{digest}",
            partition_key=month,
            asset_selection=[register_key(register)],
            tags={"lmdp/delivery": path.name},
        )
    context.update_cursor(json.dumps(current))
