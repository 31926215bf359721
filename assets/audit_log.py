"""The audit log as Dagster sees it: every line's chain head recorded by the run that wrote it.

``audit_log`` is an external asset (the file is written by runs, through
lmdp_pipeline.audit): each audit line a run writes is followed by an observation of it
carrying the line's sequence number and hash. A log cut at its end still forms a valid
chain; compared with the heads Dagster holds (``recorded_head``), it does not.
"""

from __future__ import annotations

import dagster as dg

from lmdp_pipeline.audit import Head

AUDIT_LOG_KEY = dg.AssetKey("audit_log")
HEADS_LOOKED_AT = 200
"""Runs may record heads slightly out of order; the highest of the latest few is the head."""

audit_log = dg.AssetSpec(
    key=AUDIT_LOG_KEY,
    group_name="documentation",
    kinds={"json"},
    owners=["team:data-engineering"],
    description=(
        "audit/audit.jsonl: the tamper-evident audit log (deliveries, builds, keys, retirements), a hash chain. "
        "Each observation is the chain head after a line written by the run that observed it; "
        "`lmdp audit verify` checks the file against the latest."
    ),
)


def observe_head(context):
    """A callback for AuditLog: log the new chain head as an observation of ``audit_log`` in this run."""

    def observe(entry: dict) -> None:
        context.log_event(dg.AssetObservation(asset_key=AUDIT_LOG_KEY, metadata={
            "sequence": entry["seq"], "hash": entry["hash"], "event": entry["event"], "project": entry.get("project") or "",
        }))

    return observe


def recorded_head(instance: dg.DagsterInstance) -> Head | None:
    """The highest chain head that runs recorded in this Dagster instance."""
    records = instance.fetch_observations(AUDIT_LOG_KEY, limit=HEADS_LOOKED_AT).records
    heads = [(r.asset_observation.metadata["sequence"].value, r.asset_observation.metadata["hash"].value)
             for r in records if r.asset_observation is not None]
    if not heads:
        return None
    sequence, digest = max(heads)
    return Head(int(sequence), str(digest))
