"""Workspace quotas: setting them, reading sizes people type, and admitting new blobs.

Admission is what keeps a quota under parallel uploads. It runs inside the registration
transaction, which holds the catalog's write lock (SQLite's ``BEGIN IMMEDIATE``; on
PostgreSQL the workspace row, locked with ``SELECT ... FOR NO KEY UPDATE`` by `QuotaGate`), so
two uploads of one workspace are admitted one after the other, never both against the
same free space. A blob is admitted when the workspace's reserved bytes plus the new
blob's size fit the quota:

- reserved bytes are the sizes of the workspace's blobs that are ``ready`` or
  ``processing``: a claimed ``processing`` blob *is* the reservation, taken in the same
  transaction that admits it, and a blob that ends ``failed`` stops counting, which
  releases the reservation;
- only originals are counted. A blob's variants do not exist yet when it is admitted, and
  their sizes are only known after rendering. `mediamill.catalog.usage` reports originals
  and variants, and the quota sweep compares that fuller figure with the quota, so a
  workspace can end above its quota by its variants' bytes and is then told so by a
  ``mediamill.quota.exceeded`` event;
- a duplicate of a blob the workspace already stores costs no new bytes and is always
  admitted; so is a workspace without a quota.
"""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from mediamill.catalog import repository as repo
from mediamill.catalog.models import Blob, BlobStatus, QuotaState, Workspace

__all__ = [
    "QUOTA_EXCEEDED",
    "RESERVING_STATUSES",
    "WARNING_FRACTION",
    "QuotaGate",
    "format_size",
    "lock_workspace_statement",
    "parse_size",
    "quota_state",
    "reserved_bytes",
    "set_quota",
]

# The media error code of an upload refused for want of space: stable, for machines.
QUOTA_EXCEEDED = "quota_exceeded"
# Usage from this fraction of the quota on is a warning; from 1.0 it is exceeded.
WARNING_FRACTION = 0.8
# Blob statuses whose bytes are stored, or about to be: what admission counts.
RESERVING_STATUSES = (BlobStatus.ready, BlobStatus.processing)

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]*)\s*$", re.IGNORECASE)
_UNLIMITED = frozenset({"none", "unlimited"})


def parse_size(text: str) -> int | None:
    """Bytes from ``"5GB"``, ``"500MiB"``, ``"1048576"``; ``None`` for ``"none"``/``"unlimited"``.

    KB/MB/GB/TB are decimal (powers of 1000) and KiB/MiB/GiB/TiB binary, as in IEC 80000-13,
    so ``5GB`` means what a storage bill means by it. Raises `ValueError` for anything else.
    """
    if text.strip().lower() in _UNLIMITED:
        return None
    match = _SIZE.match(text)
    unit = match["unit"].lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{text!r} is not a size: use bytes or a number with a unit "
            "(KB, MB, GB, TB or KiB, MiB, GiB, TiB), e.g. 5GB or 500MiB, or 'none'"
        )
    # Decimal, not float: "1.1GB" is exactly 1,100,000,000 bytes.
    return int(Decimal(match["number"]) * _UNITS[unit])


def format_size(size: int | None) -> str:
    """A size for people, in decimal units (``4.70 GB``); ``unlimited`` for ``None``."""
    if size is None:
        return "unlimited"
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if abs(size) >= factor:
            return f"{size / factor:.2f} {unit}"
    return f"{size} B"


def quota_state(used: int, quota: int | None) -> QuotaState:
    """Where ``used`` bytes stand against ``quota``: warning from 80%, exceeded from 100%."""
    if quota is None:
        return QuotaState.unlimited
    if used == 0:
        return QuotaState.ok  # storing nothing is within any quota, even a zero one
    if used >= quota:
        return QuotaState.exceeded
    if used >= WARNING_FRACTION * quota:
        return QuotaState.warning
    return QuotaState.ok


def set_quota(session: Session, slug: str, quota_bytes: int | None) -> Workspace:
    """Set (or, with ``None``, lift) a workspace's quota, creating the workspace if needed.

    A quota may be set before the first upload, and below current usage: uploads are then
    refused until enough is deleted, and nothing stored is touched.
    """
    if quota_bytes is not None and quota_bytes < 0:
        raise ValueError("a quota cannot be negative")
    workspace = repo.ensure_workspace(session, slug)
    workspace.quota_bytes = quota_bytes
    return workspace


def lock_workspace_statement(workspace_id: int) -> Select[tuple[Workspace]]:
    """The workspace row, locked ``FOR NO KEY UPDATE`` on PostgreSQL (SQLite ignores it).

    Every admission of the workspace takes this lock first, so admissions of one workspace
    queue behind each other while other workspaces proceed.

    Not ``FOR UPDATE``: every row inserted with a foreign key to the workspace (the upload's
    media row and audit events, written before admission) takes ``FOR KEY SHARE`` on it,
    which ``FOR UPDATE`` waits for. Two registrations that had each inserted their media
    row then waited for each other's, a deadlock PostgreSQL broke by failing one of them;
    ``FOR NO KEY UPDATE`` serialises admissions and lets those inserts through.
    """
    return (
        select(Workspace)
        .where(Workspace.id == workspace_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


def reserved_bytes(session: Session, workspace_id: int) -> int:
    """Sizes of the workspace's originals that are stored or being processed."""
    total = session.scalar(
        select(func.coalesce(func.sum(Blob.size), 0)).where(
            Blob.workspace_id == workspace_id, Blob.status.in_(RESERVING_STATUSES)
        )
    )
    return int(total or 0)


class QuotaGate:
    """Admits new blobs into one workspace, within one registration transaction.

    Built on first need in the transaction: it locks the workspace row and reads the quota
    and the reserved bytes once, then keeps a running total as it admits blobs, which is
    exact because no other admission of the workspace can run until this transaction ends
    (a blob failing meanwhile only frees space, so the total errs on the safe side).
    """

    def __init__(self, session: Session, workspace_id: int) -> None:
        workspace = session.scalar(lock_workspace_statement(workspace_id))
        if workspace is None:
            raise LookupError(f"workspace {workspace_id} vanished")
        self.quota: int | None = workspace.quota_bytes
        self.used = 0 if self.quota is None else reserved_bytes(session, workspace_id)

    def admit(self, size: int) -> str | None:
        """Reserve ``size`` bytes; ``None`` when admitted, else why not, for the uploader."""
        if self.quota is None:
            return None
        if self.used + size > self.quota:
            free = max(0, self.quota - self.used)
            return (
                f"workspace quota exceeded: this upload needs {format_size(size)}, and "
                f"{format_size(self.used)} of the {format_size(self.quota)} quota is in use "
                f"({format_size(free)} free)"
            )
        self.used += size
        return None

    def refund(self, size: int) -> None:
        """Give back a reservation that turned out to be a blob the workspace already had."""
        if self.quota is not None:
            self.used -= size
