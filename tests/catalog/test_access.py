"""API access on a real migrated catalog: tokens, webhook secrets, accepted deliveries."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mediamill.catalog import access
from mediamill.catalog.base import utcnow
from mediamill.catalog.models import ApiToken, AuditEvent, WebhookDelivery, WebhookSecret, Workspace
from tests.catalog.factories import add_workspace


def _token_row(session: Session, token: str) -> ApiToken:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == access.token_hash(token)))
    assert row is not None
    return row


def test_created_token_is_stored_only_as_its_hash(session: Session) -> None:
    token = access.create_token(session, "acme", "ana", ("read",), name="ci")
    session.commit()
    assert token.startswith(access.TOKEN_PREFIX)
    row = _token_row(session, token)
    assert row.token_hash == access.token_hash(token) != token
    assert row.prefix == token[:10]
    assert row.user == "ana"
    assert row.name == "ci"
    # The clear token appears in no column of any token row, nor in the audit trail.
    for stored in session.scalars(select(ApiToken)):
        assert token not in (stored.token_hash, stored.prefix, stored.name, stored.scopes)
    audits = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "token.created")))
    assert len(audits) == 1
    assert token not in repr(audits[0].details)
    assert audits[0].subject == token[:10]


def test_create_token_creates_the_workspace_and_authenticates(session: Session) -> None:
    token = access.create_token(session, "newco", "bob", ("write",))
    session.commit()
    workspace = session.scalar(select(Workspace).where(Workspace.slug == "newco"))
    assert workspace is not None
    principal = access.authenticate(session, token)
    assert principal is not None
    assert principal.workspace_id == workspace.id
    assert principal.workspace == "newco"
    assert principal.user == "bob"
    assert principal.scopes == frozenset({"read", "write"})
    assert principal.may("read")
    assert principal.may("write")
    assert not principal.may("admin")


@pytest.mark.parametrize(
    ("scopes", "granted"),
    [
        (("read",), {"read"}),
        (("write",), {"read", "write"}),
        (("admin",), {"read", "write", "admin"}),
        (("read", "admin"), {"read", "write", "admin"}),
    ],
)
def test_scopes_expand(session: Session, scopes: tuple[str, ...], granted: set[str]) -> None:
    assert access.expand_scopes(scopes) == granted
    token = access.create_token(session, "acme", "ana", scopes)
    session.commit()
    principal = access.authenticate(session, token)
    assert principal is not None
    assert principal.scopes == granted
    assert set(_token_row(session, token).scopes.split()) == granted


def test_unknown_scope_is_refused_and_nothing_is_stored(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown scope 'owner'"):
        access.create_token(session, "acme", "ana", ("read", "owner"))
    assert session.scalars(select(ApiToken)).all() == []


def test_unknown_token_is_none(session: Session) -> None:
    access.create_token(session, "acme", "ana")
    session.commit()
    assert access.authenticate(session, access.TOKEN_PREFIX + "x" * 43) is None
    assert access.authenticate(session, "not-even-prefixed") is None
    assert access.authenticate(session, "") is None


def test_the_stored_hash_is_not_a_token(session: Session) -> None:
    token = access.create_token(session, "acme", "ana")
    session.commit()
    assert access.authenticate(session, access.token_hash(token)) is None
    assert access.authenticate(session, access.TOKEN_PREFIX + access.token_hash(token)) is None


def test_revoked_token_is_none(session: Session) -> None:
    token = access.create_token(session, "acme", "ana")
    other = access.create_token(session, "acme", "ana")
    session.commit()
    _token_row(session, token).revoked_at = utcnow()
    session.commit()
    assert access.authenticate(session, token) is None
    assert access.authenticate(session, other) is not None


def test_expired_token_is_none_and_unexpired_works(session: Session) -> None:
    expired = access.create_token(
        session, "acme", "ana", expires_at=utcnow() - timedelta(seconds=1)
    )
    valid = access.create_token(session, "acme", "ana", expires_at=utcnow() + timedelta(hours=1))
    session.commit()
    assert access.authenticate(session, expired) is None
    assert access.authenticate(session, valid) is not None


def test_tokens_are_distinct(session: Session) -> None:
    tokens = {access.create_token(session, "acme", "ana") for _ in range(5)}
    session.commit()
    assert len(tokens) == 5
    assert len({row.token_hash for row in session.scalars(select(ApiToken))}) == 5


def test_new_webhook_secret_revokes_the_previous(session: Session) -> None:
    first = access.create_webhook_secret(session, "acme", actor="ana")
    session.commit()
    found = access.webhook_secrets(session, "acme")
    assert found is not None
    workspace_id, active = found
    assert active == [first]
    assert first.startswith(access.SECRET_PREFIX)

    second = access.create_webhook_secret(session, "acme", actor="ana")
    session.commit()
    assert second != first
    assert access.webhook_secrets(session, "acme") == (workspace_id, [second])
    rows = {row.secret: row for row in session.scalars(select(WebhookSecret))}
    assert rows[first].revoked_at is not None
    assert rows[second].revoked_at is None


def test_webhook_secrets_are_per_workspace(session: Session) -> None:
    acme = access.create_webhook_secret(session, "acme")
    globex = access.create_webhook_secret(session, "globex")
    access.create_webhook_secret(session, "globex")  # rotating globex leaves acme alone
    session.commit()
    found = access.webhook_secrets(session, "acme")
    assert found is not None
    assert found[1] == [acme]
    rotated = access.webhook_secrets(session, "globex")
    assert rotated is not None
    assert globex not in rotated[1]
    assert len(rotated[1]) == 1
    assert access.webhook_secrets(session, "nobody") is None


def test_a_workspace_without_an_active_secret_is_known_but_has_none(session: Session) -> None:
    workspace_id = add_workspace(session, "acme").id
    session.commit()
    assert access.webhook_secrets(session, "acme") == (workspace_id, [])
    access.create_webhook_secret(session, "acme")
    session.execute(update(WebhookSecret).values(revoked_at=utcnow()))
    session.commit()
    assert access.webhook_secrets(session, "acme") == (workspace_id, [])


def test_claim_delivery_once_per_workspace_and_event(session: Session) -> None:
    acme_id = add_workspace(session, "acme").id
    globex_id = add_workspace(session, "globex").id

    first = access.claim_delivery(session, acme_id, "evt_1", "object.created")
    assert first is not None
    assert access.claim_delivery(session, acme_id, "evt_1", "object.created") is None
    # The losing insert did nothing: the transaction is still usable.
    elsewhere = access.claim_delivery(session, globex_id, "evt_1", "object.created")
    assert elsewhere is not None
    other_event = access.claim_delivery(session, acme_id, "evt_2", "object.created")
    assert other_event is not None
    session.commit()

    rows = session.execute(
        select(WebhookDelivery.workspace_id, WebhookDelivery.event_id).order_by(WebhookDelivery.id)
    ).all()
    assert [tuple(r) for r in rows] == [
        (acme_id, "evt_1"),
        (globex_id, "evt_1"),
        (acme_id, "evt_2"),
    ]
    found = access.find_delivery(session, acme_id, "evt_1")
    assert found == (first, None, None)  # no media, no run yet
    run_id, media_id = uuid.uuid4(), uuid.uuid4()
    access.mark_dispatched(session, first, run_id, media_id)
    assert access.find_delivery(session, acme_id, "evt_1") == (first, media_id, run_id)
    assert access.find_delivery(session, globex_id, "evt_2") is None


def test_webhook_signing_reads_the_secrets_and_the_events_delivery_at_once(
    session: Session,
) -> None:
    access.create_webhook_secret(session, "acme")
    active = access.create_webhook_secret(session, "acme")  # revokes the first
    access.create_webhook_secret(session, "globex")
    session.commit()
    acme_id = session.scalars(select(Workspace.id).where(Workspace.slug == "acme")).one()
    globex_id = session.scalars(select(Workspace.id).where(Workspace.slug == "globex")).one()
    run_id, media_id = uuid.uuid4(), uuid.uuid4()
    delivery = access.claim_delivery(session, globex_id, "evt_1", "entity.deleted")
    assert delivery is not None
    access.mark_dispatched(session, delivery, run_id, media_id)
    session.commit()

    # New to acme (the same event id in globex is none of its business); only the active
    # secret is read.
    fresh = access.webhook_signing(session, "acme", "evt_1")
    assert fresh == (acme_id, [active], "evt_1", None)
    seen = access.webhook_signing(session, "globex", "evt_1")
    assert seen is not None
    assert (seen.workspace_id, seen.prior) == (globex_id, (delivery, media_id, run_id))
    assert len(seen.secrets) == 1  # one row per active secret, the delivery on each
    assert access.webhook_signing(session, "nobody", "evt_1") is None


def test_webhook_signing_knows_a_workspace_without_an_active_secret(session: Session) -> None:
    workspace_id = add_workspace(session, "acme").id
    session.commit()
    assert access.webhook_signing(session, "acme", "evt_1") == (workspace_id, [], "evt_1", None)


def test_claim_after_commit_is_still_a_duplicate(session: Session) -> None:
    acme_id = add_workspace(session, "acme").id
    claimed = access.claim_delivery(session, acme_id, "evt_9", "entity.deleted")
    assert claimed is not None
    session.commit()
    assert access.claim_delivery(session, acme_id, "evt_9", "entity.deleted") is None
    access.forget_delivery(session, claimed)
    session.commit()
    # A forgotten acceptance (its run never started) can be claimed again by the retry.
    assert access.claim_delivery(session, acme_id, "evt_9", "entity.deleted") is not None


def test_a_claim_keeps_its_job_and_a_losing_copy_changes_nothing(session: Session) -> None:
    acme_id = add_workspace(session, "acme").id
    media_id, retry_at = uuid.uuid4(), utcnow() + timedelta(seconds=60)
    job = {"kind": "ingest-upload", "parameters": {"workspace": "acme"}}
    claimed = access.claim_delivery(
        session, acme_id, "evt_1", "upload.completed", job=job, retry_at=retry_at, media_id=media_id
    )
    other_job = {"kind": "entity-cleanup", "parameters": {}}
    assert access.claim_delivery(session, acme_id, "evt_1", "entity.deleted", job=other_job) is None
    session.commit()

    row = session.get(WebhookDelivery, claimed)
    assert row is not None
    assert (row.event_type, row.job, row.media_id) == ("upload.completed", job, media_id)
    assert row.retry_at is not None
    assert abs((row.retry_at - retry_at).total_seconds()) < 1
    assert row.received_at is not None


def _delivery_with_job(session: Session, workspace_id: int, event_id: str, due_in: float) -> int:
    delivery_id = access.claim_delivery(
        session,
        workspace_id,
        event_id,
        "entity.deleted",
        job={"kind": "entity-cleanup", "parameters": {"workspace": "acme"}},
        retry_at=utcnow() + timedelta(seconds=due_in),
    )
    assert delivery_id is not None
    return delivery_id


def test_stranded_deliveries_are_the_due_ones_and_each_is_taken_once(session: Session) -> None:
    acme_id = add_workspace(session, "acme").id
    due = _delivery_with_job(session, acme_id, "evt_due", due_in=-10)
    _delivery_with_job(session, acme_id, "evt_later", due_in=600)
    dispatched = _delivery_with_job(session, acme_id, "evt_done", due_in=-20)
    access.mark_dispatched(session, dispatched, None, None)
    session.commit()
    now = utcnow()

    taken = access.take_stranded_deliveries(session, now, now + timedelta(seconds=300), 10)
    session.commit()

    assert [(t.id, t.event_id, t.job["kind"]) for t in taken] == [
        (due, "evt_due", "entity-cleanup")
    ]
    # Held: a second look at the same moment (another API process) finds nothing.
    assert access.take_stranded_deliveries(session, now, now + timedelta(seconds=300), 10) == []
    later = now + timedelta(seconds=301)
    assert [t.event_id for t in access.take_stranded_deliveries(session, later, later, 10)] == [
        "evt_due"
    ]


def test_a_released_delivery_is_never_taken(session: Session) -> None:
    acme_id = add_workspace(session, "acme").id
    released = _delivery_with_job(session, acme_id, "evt_1", due_in=-10)
    access.release_delivery(session, released)
    session.commit()
    row = session.get(WebhookDelivery, released)
    assert row is not None
    assert (row.job, row.retry_at) == (None, None)
    assert access.take_stranded_deliveries(session, utcnow(), utcnow(), 10) == []


def test_only_old_settled_deliveries_are_counted_and_forgotten_oldest_first(
    session: Session,
) -> None:
    acme, globex = add_workspace(session, "acme"), add_workspace(session, "globex")
    now = utcnow()
    ages = {"evt_1": 50, "evt_2": 40, "evt_3": 31, "evt_recent": 10}
    for event_id, days in ages.items():
        delivery = access.claim_delivery(session, acme.id, event_id, "entity.deleted")
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery)
            .values(received_at=now - timedelta(days=days))
        )
    waiting = access.claim_delivery(
        session, acme.id, "evt_waiting", "entity.deleted", job={"kind": "x"}, retry_at=now
    )
    theirs = access.claim_delivery(session, globex.id, "evt_theirs", "entity.deleted")
    for delivery in (waiting, theirs):
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery)
            .values(received_at=now - timedelta(days=90))
        )
    cutoff = now - timedelta(days=30)

    assert access.settled_deliveries(session, [acme.id, globex.id], cutoff) == {
        acme.id: 3,
        globex.id: 1,
    }
    assert access.forget_settled_deliveries(session, acme.id, cutoff, limit=2) == 2
    left = set(session.scalars(select(WebhookDelivery.event_id)))
    assert left == {"evt_3", "evt_recent", "evt_waiting", "evt_theirs"}  # the oldest went first
    assert access.forget_settled_deliveries(session, acme.id, cutoff, limit=2) == 1
    assert access.forget_settled_deliveries(session, acme.id, cutoff, limit=2) == 0
    assert access.settled_deliveries(session, [acme.id], cutoff) == {}
