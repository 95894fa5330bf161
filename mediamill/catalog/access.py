"""Who may reach a workspace through the API: tokens, webhook secrets, accepted deliveries.

Tokens are minted here and only their hash is kept; the caller shows the token once.
Scopes nest: ``admin`` implies ``write``, which implies ``read``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session

from mediamill.catalog.base import utcnow
from mediamill.catalog.models import ApiToken, WebhookDelivery, WebhookSecret, Workspace
from mediamill.catalog.repository import ensure_workspace, record_audit

SCOPES = ("read", "write", "admin")
TOKEN_PREFIX = "mm_"  # noqa: S105  (a marker, not a secret)
SECRET_PREFIX = "whsec_"  # noqa: S105
_IMPLIED = {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write", "admin"}}


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def expand_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Every scope the given ones grant; ValueError names an unknown one."""
    granted: set[str] = set()
    for scope in scopes:
        if scope not in _IMPLIED:
            raise ValueError(f"unknown scope {scope!r}; choose from {', '.join(SCOPES)}")
        granted |= _IMPLIED[scope]
    return frozenset(granted)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the workspace every request of theirs is confined to."""

    workspace_id: int
    workspace: str
    user: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def create_token(
    session: Session,
    workspace: str,
    user: str,
    scopes: Iterable[str] = ("read", "write"),
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Mint a token for ``user`` in ``workspace`` (created if new); returns it, never stored."""
    granted = expand_scopes(scopes)
    owner = ensure_workspace(session, workspace)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            workspace_id=owner.id,
            user=user,
            name=name,
            prefix=token[:10],
            token_hash=token_hash(token),
            scopes=" ".join(s for s in SCOPES if s in granted),
            expires_at=expires_at,
        )
    )
    record_audit(
        session,
        workspace_id=owner.id,
        action="token.created",
        actor=user,
        subject=token[:10],
        details={"scopes": sorted(granted), "name": name},
    )
    return token


# Every API request runs this: built once, and plain columns (no entity to build).
_TOKEN_LOOKUP = (
    select(
        ApiToken.workspace_id,
        Workspace.slug,
        ApiToken.user,
        ApiToken.scopes,
        ApiToken.revoked_at,
        ApiToken.expires_at,
    )
    .join(Workspace, Workspace.id == ApiToken.workspace_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal a token stands for, or None when it is unknown, revoked or expired."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    # On the session's connection: a plain row, without the ORM's per-statement work.
    connection = session.connection()
    row = connection.execute(_TOKEN_LOOKUP, {"token_hash": token_hash(token)}).first()
    if row is None:
        return None
    workspace_id, slug, user, scopes, revoked_at, expires_at = row
    if revoked_at is not None or (expires_at is not None and expires_at <= utcnow()):
        return None
    return Principal(workspace_id, slug, user, frozenset(scopes.split()))


def create_webhook_secret(session: Session, workspace: str, actor: str | None = None) -> str:
    """A new signing secret for ``workspace``; the previous one stops being accepted."""
    owner = ensure_workspace(session, workspace)
    session.execute(
        update(WebhookSecret)
        .where(WebhookSecret.workspace_id == owner.id, WebhookSecret.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    secret = SECRET_PREFIX + secrets.token_hex(32)
    session.add(WebhookSecret(workspace_id=owner.id, secret=secret))
    record_audit(session, workspace_id=owner.id, action="webhook_secret.created", actor=actor)
    return secret


# The statements every webhook runs are built once on the tables and run on the session's
# connection: plain rows, without the ORM's per-statement work. The outer join keeps a
# workspace that has no active secret (one row, secret NULL) apart from one that does not
# exist.
_WORKSPACES = Workspace.__table__.c
_SECRETS = WebhookSecret.__table__.c
_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_SECRETS_LOOKUP = (
    select(_WORKSPACES.id, _SECRETS.secret)
    .select_from(
        Workspace.__table__.outerjoin(
            WebhookSecret.__table__,
            and_(_SECRETS.workspace_id == _WORKSPACES.id, _SECRETS.revoked_at.is_(None)),
        )
    )
    .where(_WORKSPACES.slug == bindparam("slug"))
)


def webhook_secrets(session: Session, workspace: str) -> tuple[int, list[str]] | None:
    """The workspace's id and active signing secrets; None for an unknown workspace."""
    rows = session.connection().execute(_SECRETS_LOOKUP, {"slug": workspace}).all()
    if not rows:
        return None
    return rows[0][0], [secret for _, secret in rows if secret is not None]


def claim_delivery(
    session: Session,
    workspace_id: int,
    event_id: str,
    event_type: str,
    *,
    job: dict[str, Any] | None = None,
    retry_at: datetime | None = None,
    media_id: uuid.UUID | None = None,
) -> int | None:
    """Record an event as accepted, with the job it starts; its row id, or None if seen before.

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: a copy that loses the race gets
    no row back, and the caller's transaction stays usable without a savepoint. Every first
    delivery writes through here, so the write lock is held for one statement.
    """
    values = {
        "workspace_id": workspace_id,
        "event_id": event_id,
        "event_type": event_type,
        "received_at": utcnow(),
        "job": job,
        "retry_at": retry_at,
        "media_id": media_id,
    }
    return session.connection().execute(_DELIVERY_CLAIM, values).scalar_one_or_none()


# Written out because SQLAlchemy 2.0 cannot cache its dialects' ON CONFLICT inserts (their
# cache key is None), and compiling one on every claim took 4% of a first delivery's
# profile. SQLite and PostgreSQL spell it the same; the binds carry the columns' types.
_DELIVERY_CLAIM = (
    text(
        "INSERT INTO webhook_deliveries"
        " (workspace_id, event_id, event_type, received_at, job, retry_at, media_id)"
        " VALUES (:workspace_id, :event_id, :event_type, :received_at, :job, :retry_at, :media_id)"
        " ON CONFLICT (workspace_id, event_id) DO NOTHING RETURNING id"
    )
    .bindparams(
        *(
            bindparam(column.name, type_=column.type)
            for column in _DELIVERIES.c
            if column.name not in ("id", "run_id")
        )
    )
    .columns(_DELIVERIES.c.id)
)


class PriorDelivery(NamedTuple):
    """What a redelivery is answered with: the first delivery's media and run."""

    id: int
    media_id: uuid.UUID | None
    run_id: uuid.UUID | None


# Every webhook runs this (a first delivery finds nothing): built once, plain columns.
_DELIVERY_LOOKUP = select(_DELIVERIES.c.id, _DELIVERIES.c.media_id, _DELIVERIES.c.run_id).where(
    _DELIVERIES.c.workspace_id == bindparam("workspace_id"),
    _DELIVERIES.c.event_id == bindparam("event_id"),
)


# A row per active secret, each with the event's earlier delivery if there is one (the
# pair is unique, so it never multiplies the rows).
_SIGNING_LOOKUP = (
    select(
        _WORKSPACES.id,
        _SECRETS.secret,
        _DELIVERIES.c.id,
        _DELIVERIES.c.media_id,
        _DELIVERIES.c.run_id,
    )
    .select_from(
        Workspace.__table__.outerjoin(
            WebhookSecret.__table__,
            and_(_SECRETS.workspace_id == _WORKSPACES.id, _SECRETS.revoked_at.is_(None)),
        ).outerjoin(
            _DELIVERIES,
            and_(
                _DELIVERIES.c.workspace_id == _WORKSPACES.id,
                _DELIVERIES.c.event_id == bindparam("event_id"),
            ),
        )
    )
    .where(_WORKSPACES.slug == bindparam("slug"))
)


def find_delivery(session: Session, workspace_id: int, event_id: str) -> PriorDelivery | None:
    """The earlier acceptance of an event, to answer a redelivery with the same run."""
    row = (
        session.connection()
        .execute(_DELIVERY_LOOKUP, {"workspace_id": workspace_id, "event_id": event_id})
        .first()
    )
    return None if row is None else PriorDelivery(*row)


class WebhookSigning(NamedTuple):
    """A workspace's signing secrets, and what it already knows of the event that came in."""

    workspace_id: int
    secrets: list[str]
    event_id: str
    prior: PriorDelivery | None


def webhook_signing(session: Session, workspace: str, event_id: str) -> WebhookSigning | None:
    """`webhook_secrets` and `find_delivery` in one statement: one round trip per webhook.

    The delivery found must only be used once the signature checked out. None for an
    unknown workspace.
    """
    rows = (
        session.connection()
        .execute(_SIGNING_LOOKUP, {"slug": workspace, "event_id": event_id})
        .all()
    )
    if not rows:
        return None
    workspace_id, _, delivery_id, media_id, run_id = rows[0]
    prior = None if delivery_id is None else PriorDelivery(delivery_id, media_id, run_id)
    secrets = [row[1] for row in rows if row[1] is not None]
    return WebhookSigning(workspace_id, secrets, event_id, prior)


# Every accepted event's delivery ends with this: built once, on the table (no unit of work
# holds deliveries), it sets the columns its parameters name.
_DELIVERY_SETTLE = update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("delivery_id"))


def mark_dispatched(
    session: Session, delivery_id: int, run_id: uuid.UUID | None, media_id: uuid.UUID | None
) -> None:
    """Note the run an accepted event started; nothing is left to start again."""
    session.connection().execute(
        _DELIVERY_SETTLE,
        {
            "delivery_id": delivery_id,
            "run_id": run_id,
            "media_id": media_id,
            "job": None,
            "retry_at": None,
        },
    )


def release_delivery(session: Session, delivery_id: int) -> None:
    """Nothing is to be started for this event any more (its media was settled otherwise)."""
    session.connection().execute(
        _DELIVERY_SETTLE, {"delivery_id": delivery_id, "job": None, "retry_at": None}
    )


@dataclass(frozen=True)
class StrandedDelivery:
    """An accepted event whose run was not created in time, to be started again."""

    id: int
    workspace_id: int
    event_id: str
    event_type: str
    media_id: uuid.UUID | None
    job: dict[str, Any]


def take_stranded_deliveries(
    session: Session, now: datetime, hold_until: datetime, limit: int
) -> list[StrandedDelivery]:
    """Up to ``limit`` events due to be started again, each held until ``hold_until``.

    Holding moves ``retry_at`` on, compared and set in one statement per row: when two API
    processes look at once, each row goes to one of them, and to the other again only if
    its run still does not exist by then.
    """
    due = session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.retry_at <= now, WebhookDelivery.job.is_not(None))
        .order_by(WebhookDelivery.retry_at)
        .limit(limit)
    ).scalars()
    taken = []
    for delivery in list(due):
        held = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.retry_at == delivery.retry_at,
            )
            .values(retry_at=hold_until)
            .execution_options(synchronize_session=False)
        )
        if held.rowcount == 1 and delivery.job is not None:  # type: ignore[attr-defined]
            taken.append(
                StrandedDelivery(
                    delivery.id,
                    delivery.workspace_id,
                    delivery.event_id,
                    delivery.event_type,
                    delivery.media_id,
                    dict(delivery.job),
                )
            )
    return taken


def _settled_before(received_before: datetime) -> tuple[ColumnElement[bool], ...]:
    """Received before the cutoff, with nothing left to start (``retry_at`` is cleared)."""
    return (
        WebhookDelivery.received_at < received_before,
        WebhookDelivery.retry_at.is_(None),
    )


def settled_deliveries(
    session: Session, workspace_ids: list[int], received_before: datetime
) -> dict[int, int]:
    """Per workspace, how many deliveries received before the cutoff have nothing to start.

    Deliveries whose run is still to be started (``retry_at`` set) are never counted.
    """
    rows = session.execute(
        select(WebhookDelivery.workspace_id, func.count())
        .where(WebhookDelivery.workspace_id.in_(workspace_ids), *_settled_before(received_before))
        .group_by(WebhookDelivery.workspace_id)
    )
    return {workspace_id: count for workspace_id, count in rows}


def forget_settled_deliveries(
    session: Session, workspace_id: int, received_before: datetime, limit: int
) -> int:
    """Forget up to ``limit`` of the deliveries ``settled_deliveries`` counts; how many."""
    oldest = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.workspace_id == workspace_id, *_settled_before(received_before))
        .order_by(WebhookDelivery.received_at)
        .limit(limit)
    )
    result = session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.id.in_(oldest.scalar_subquery()))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget_delivery(session: Session, delivery_id: int) -> None:
    """Drop an acceptance whose run never started, so the sender's retry runs it."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.id == delivery_id))
