"""The Celery app of the celery-saga peer: the step and compensation tasks, and the saga built from them.

Imported by the driver (``celerysaga_saga.py``) and by the worker it starts (``celery -A celerysaga_app worker``);
both configure it with ``configure``, the worker from the environment the driver passes.
"""

from __future__ import annotations

import os
from typing import Any

import peer_common as common
import psycopg
from celery import Celery
from celery_saga import PermanentFailure, Saga, saga_task, set_default_backend
from celery_saga.backends import RedisSagaBackend

app = Celery("peers_order_saga")
_database: dict[str, Any] = {}  # "url" -> str; "conn" -> this process's connection, opened on first use


def configure(*, redis_url: str, queue: str, database_url: str) -> None:
    app.conf.update(
        broker_url=redis_url,
        task_default_queue=queue,  # celery-saga's compensation chain is sent without a queue: the default one
        task_ignore_result=True,  # celery-saga keeps saga state in its own Redis backend
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    set_default_backend(RedisSagaBackend(url=redis_url))
    _database["url"] = database_url


def _connection() -> psycopg.Connection[Any]:
    if "conn" not in _database:
        _database["conn"] = psycopg.connect(_database["url"])
    return _database["conn"]


def _participant_task(action: str, *, compensates: bool) -> Any:
    """A task running one step (called with the saga's context) or one compensation (with the step's output)."""

    def step(**order: Any) -> dict[str, str]:
        try:
            common.run_sync(_connection(), action, order)
        except common.StepRefusedError as refusal:
            raise PermanentFailure(str(refusal)) from refusal
        return {"order_id": order["order_id"]}  # the step's output, and what its compensation is given

    def compensation(compensation_data: dict[str, str]) -> None:
        common.run_sync(_connection(), action, compensation_data)

    return compensation if compensates else step


def _order_saga() -> Saga:
    saga = Saga("order_saga")
    for name in common.STEPS:
        undo = common.COMPENSATION.get(name)
        task = saga_task(app, name=name, no_compensation=undo is None)(_participant_task(name, compensates=False))
        compensate = app.task(name=undo)(_participant_task(undo, compensates=True)) if undo else None
        saga.add_step(task, compensate=compensate)
    return saga


ORDER_SAGA = _order_saga()

if "PEERS_CELERY_QUEUE" in os.environ:  # the worker
    configure(
        redis_url=os.environ["PEERS_REDIS_URL"],
        queue=os.environ["PEERS_CELERY_QUEUE"],
        database_url=os.environ["PEERS_APP_DATABASE_URL"],
    )
