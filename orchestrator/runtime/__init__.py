"""The imperative shell: manager, service hosting, orchestrator process."""

from orchestrator.runtime._history import RebuildError, rebuild, state_as_of
from orchestrator.runtime._host import ServiceSpec, serve
from orchestrator.runtime._manager import (
    CONSUMER,
    SAGA_ID_NAMESPACE,
    OperationRefusedError,
    SagaManager,
    SagaNotFoundError,
    utc_now,
)
from orchestrator.runtime._orchestrator import SERVICE, orchestrator_spec, run_orchestrator

__all__ = [
    "CONSUMER",
    "SAGA_ID_NAMESPACE",
    "SERVICE",
    "OperationRefusedError",
    "RebuildError",
    "SagaManager",
    "SagaNotFoundError",
    "ServiceSpec",
    "orchestrator_spec",
    "rebuild",
    "run_orchestrator",
    "serve",
    "state_as_of",
    "utc_now",
]
