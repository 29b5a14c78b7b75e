"""Saga definitions and the pure engine that runs them."""

from orchestrator.definition._dsl import Compensation, SagaBuilder, SagaContext, SagaDefinition, Step, saga
from orchestrator.definition._engine import cancel, on_reply, on_timeout, resume, start
from orchestrator.definition._errors import DefinitionError, InvalidSagaDefinition, UnexpectedReply
from orchestrator.definition._machine import Edge, StateMachine, compile_machine
from orchestrator.definition._mermaid import to_mermaid
from orchestrator.definition._retry import COMPENSATION_RETRY, DEFAULT_RETRY, RetryPolicy
from orchestrator.definition._state import Actions, HistoryEntry, OutboundCommand, SagaState, SagaStatus

__all__ = [
    "COMPENSATION_RETRY",
    "DEFAULT_RETRY",
    "Actions",
    "Compensation",
    "DefinitionError",
    "Edge",
    "HistoryEntry",
    "InvalidSagaDefinition",
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
    "cancel",
    "compile_machine",
    "on_reply",
    "on_timeout",
    "resume",
    "saga",
    "start",
    "to_mermaid",
]
