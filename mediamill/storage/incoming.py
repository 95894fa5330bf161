"""The ``incoming/{workspace}/`` area of the store, where uploads land before ingest.

Staged uploads (``stagedUploadsCreate``) and bucket events both point here; the workspace
in the key is what a webhook or mutation is checked against, so one workspace can never
make another's upload its own.
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote

from .validation import check_key

INCOMING = "incoming"


def incoming_prefix(workspace: str) -> str:
    """Every upload of ``workspace`` waiting for ingest lives under this prefix."""
    return f"{INCOMING}/{workspace}/"


def new_incoming_key(workspace: str) -> str:
    """A fresh, unguessable key for one staged upload; never built from the filename."""
    return check_key(f"{incoming_prefix(workspace)}{uuid.uuid4().hex}")


def incoming_workspace(key: str) -> str | None:
    """The workspace an incoming key belongs to, or None when it is not an incoming key."""
    try:
        check_key(key)
    except ValueError:
        return None
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != INCOMING:
        return None
    return parts[1]


def filename_hint(key: str) -> str:
    """The last segment of a key, as the uploader named the object."""
    return unquote(key.rsplit("/", 1)[-1])
