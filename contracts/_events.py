"""Saga lifecycle events published on ``saga.events`` for anyone downstream."""

from __future__ import annotations

from typing import Literal

from contracts._base import Event


class SagaStarted(Event):
    type: Literal["SagaStarted"] = "SagaStarted"
    saga_id: str
    saga_type: str


class SagaCompleted(Event):
    type: Literal["SagaCompleted"] = "SagaCompleted"
    saga_id: str
    saga_type: str


class SagaCompensationStarted(Event):
    type: Literal["SagaCompensationStarted"] = "SagaCompensationStarted"
    saga_id: str
    saga_type: str
    failed_step: str | None
    reason: str


class SagaCompensated(Event):
    type: Literal["SagaCompensated"] = "SagaCompensated"
    saga_id: str
    saga_type: str
    reason: str


class SagaFailed(Event):
    """A compensation could not be completed: an operator must look (``sagaline saga resume``)."""

    type: Literal["SagaFailed"] = "SagaFailed"
    saga_id: str
    saga_type: str
    reason: str
