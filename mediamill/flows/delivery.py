"""Deliver a run's lifecycle events before the process exits.

Prefect sends events from a background queue and stops it at exit. When a short command
ends while events are still queued, Prefect drains them and warns "Still processing
items". Waiting for the queue to empty first delivers everything, quietly. (API logs go
through a batched queue that Prefect flushes at exit without a warning.)
"""

from __future__ import annotations

import threading

from prefect.events.worker import EventsWorker

DELIVERY_TIMEOUT_S = 30.0


def wait_for_delivery(timeout: float = DELIVERY_TIMEOUT_S) -> bool:
    """Block until queued events are sent; False if ``timeout`` ran out first."""
    waiter = threading.Thread(
        target=EventsWorker.instance().wait_until_empty, name="mediamill-delivery", daemon=True
    )
    waiter.start()
    waiter.join(timeout)
    return not waiter.is_alive()
