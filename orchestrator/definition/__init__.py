"""Saga definitions and the pure engine that runs them."""

from orchestrator.definition._dsl import Compensation, SagaBuilder, SagaContext, SagaDefinition, Step, saga
from orchestrator.definition._engine import on_reply, on_timeout, start
from orchestrator.definition._errors import DefinitionError, InvalidSagaDefinition, UnexpectedReply
from orchestrator.definition._machine import Edge, StateMachine, compile_machine
from orchestrator.definition._mermaid import to_mermaid
from orchestrator.definition._operator import (
    DEFAULT_ACTOR,
    REQUEST_EVENTS,
    TRANSITIONS,
    OperatorVerb,
    cancel,
    compensate,
    refusal,
    resume,
    retry,
)
from orchestrator.definition._registry import DefinitionRegistry, UnknownDefinition
from orchestrator.definition._retry import COMPENSATION_RETRY, DEFAULT_RETRY, RetryPolicy
from orchestrator.definition._state import Actions, HistoryEntry, OutboundCommand, SagaState, SagaStatus, name_based_id

__all__ = [
    "COMPENSATION_RETRY",
    "DEFAULT_ACTOR",
    "DEFAULT_RETRY",
    "REQUEST_EVENTS",
    "TRANSITIONS",
    "Actions",
    "Compensation",
    "DefinitionError",
    "DefinitionRegistry",
    "Edge",
    "HistoryEntry",
    "InvalidSagaDefinition",
    "OperatorVerb",
    "OutboundCommand",
    "RetryPolicy",
    "SagaBuilder",
    "SagaContext",
    "SagaDefinition",
    "SagaState",
    "SagaStatus",
    "StateMachine",
    "Step",
    "UnexpectedReply",
    "UnknownDefinition",
    "cancel",
    "compensate",
    "compile_machine",
    "name_based_id",
    "on_reply",
    "on_timeout",
    "refusal",
    "resume",
    "retry",
    "saga",
    "start",
    "to_mermaid",
]
