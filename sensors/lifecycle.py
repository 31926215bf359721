"""Jobs for a project's life beyond builds: retirement, key reissue, master key rotation.

Each is one op over one library function of ``lmdp_pipeline.projects.lifecycle`` (or
the keystore), with typed config, so the change happens in a run and lands in Dagster's
event log whoever starts it: the expiry sensor, the UI or ``lmdp``. Every audit line
they write is followed by its chain head in the run's event log.
"""

from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.projects import PROJECT_TAG, PROJECTS
from assets.resources import KeysResource, PlatformResource
from lmdp_pipeline.keys import KeystoreError, MasterKey
from lmdp_pipeline.locks import LockTimeout
from lmdp_pipeline.paths import InvalidProjectId
from lmdp_pipeline.projects.lifecycle import reissue_key, retire_project as retire


class RetireConfig(dg.Config):
    project: str = Field(description="project id, e.g. P2026-001")
    reason: str = Field(description="why, for the audit log: revoked, expired on ..., approval withdrawn, ...")
    destroy_key: bool = Field(
        default=True,
        description="destroy the key (revocation, expiry); false keeps it (withdrawn approval), so a restored approval "
        "rebuilds the same pseudonyms",
    )


class ReissueConfig(dg.Config):
    project: str = Field(description="project id whose key is lost or unreadable")
    reason: str = Field(min_length=3, description="why, for the audit log")


class RotateConfig(dg.Config):
    new_key_file: str = Field(description="path of the file holding the new master key (base64); never the key itself")


def _failure(error: Exception) -> dg.Failure:
    return dg.Failure(description=str(error))


@dg.op(description="Delete a project's extract and everything published beside it; destroy its key unless kept; "
                   "remove its partition; audit each step.")
def retire_project_op(context: dg.OpExecutionContext, config: RetireConfig, platform: PlatformResource) -> dict:
    try:
        entry = retire(platform.paths, config.project, config.reason, config.destroy_key, platform.audit(context),
                       context.run.run_id, on_wait=lambda: context.log.info(f"waiting for a build of {config.project} to end"))
    except (InvalidProjectId, LockTimeout, OSError) as error:
        raise _failure(error) from None
    if context.instance.has_dynamic_partition(PROJECTS.name, config.project):
        context.instance.delete_dynamic_partition(PROJECTS.name, config.project)
    context.add_output_metadata({"files_deleted": dg.MetadataValue.json(entry["files_deleted"]),
                                 "key_destroyed": entry["key_destroyed"], "key_id": entry["key_id"] or "none"})
    return {k: entry[k] for k in ("project", "reason", "files_deleted", "key_destroyed", "key_id")}


@dg.job(description="Retire one project: extract and published files deleted, key destroyed (revocation, expiry) or kept "
                    "(withdrawn approval), partition removed, audited.")
def retire_project():
    retire_project_op()


@dg.op(description="Make a new key for a project whose key is lost; audited; every pseudonym of the project changes.")
def reissue_project_key_op(context: dg.OpExecutionContext, config: ReissueConfig, platform: PlatformResource, keys: KeysResource) -> str:
    paths = platform.paths
    try:
        key = reissue_key(keys.keystore(paths), config.project, config.reason, platform.audit(context))
    except (InvalidProjectId, KeystoreError) as error:
        raise _failure(error) from None
    context.add_output_metadata({"key_id": key.key_id})
    return key.key_id


@dg.job(description="Reissue a lost project key (lmdp keys reissue): every pseudonym of the project changes at its next build.")
def reissue_project_key():
    reissue_project_key_op()


@dg.op(description="Rewrap every project key under a new master key; pseudonyms unchanged; audited.")
def rotate_master_key_op(context: dg.OpExecutionContext, config: RotateConfig, platform: PlatformResource, keys: KeysResource) -> int:
    paths = platform.paths
    try:
        new_master = MasterKey.from_file(Path(config.new_key_file).resolve())
        store = keys.keystore(paths)
        if store.master_material_is(new_master):
            raise KeystoreError(f"{config.new_key_file} holds the master key in use: generate a new one; nothing was rewrapped")
        rewrapped = store.rewrap(new_master)
    except KeystoreError as error:
        raise _failure(error) from None
    platform.audit(context).record("master_key_rotated", projects=rewrapped, new_master=new_master.origin, run_id=context.run.run_id)
    context.add_output_metadata({"projects": dg.MetadataValue.json(rewrapped)})
    return len(rewrapped)


@dg.job(description="Rotate the master key (lmdp keys rotate): every project key rewrapped, no pseudonym changes.")
def rotate_master_key():
    rotate_master_key_op()


def retire_request(project: str, reason: str, destroy_key: bool, run_key: str | None = None) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        job_name=retire_project.name,
        run_config={"ops": {"retire_project_op": {"config": {"project": project, "reason": reason, "destroy_key": destroy_key}}}},
        tags={PROJECT_TAG: project},
    )
