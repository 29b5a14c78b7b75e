"""The imperative shell: manager, service hosting, orchestrator process."""

from orchestrator.runtime._host import ServiceSpec, serve
from orchestrator.runtime._manager import CONSUMER, SAGA_ID_NAMESPACE, SagaManager, SagaNotFoundError, utc_now
from orchestrator.runtime._orchestrator import SERVICE, orchestrator_spec, run_orchestrator

__all__ = [
    "CONSUMER",
    "SAGA_ID_NAMESPACE",
    "SERVICE",
    "SagaManager",
    "SagaNotFoundError",
    "ServiceSpec",
    "orchestrator_spec",
    "run_orchestrator",
    "serve",
    "utc_now",
]
