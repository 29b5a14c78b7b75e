"""Running a whole stack locally: embedded infrastructure, service processes, data, driver, audit."""

from orchestrator.launch._audit import AuditReport, audit
from orchestrator.launch._catalog import FAILING, PlannedOrder, Scenario, plan_orders, seed_catalog
from orchestrator.launch._driver import Progress, latencies_ms, percentile, send_orders, status_counts, wait_terminal
from orchestrator.launch._embedded import EmbeddedBroker, EmbeddedPostgres, EmbeddedUnavailableError, free_port
from orchestrator.launch._processes import SERVICES, Cluster, ServiceProcess, embedded_broker_env
from orchestrator.launch._stack import Stack

__all__ = [
    "FAILING",
    "SERVICES",
    "AuditReport",
    "Cluster",
    "EmbeddedBroker",
    "EmbeddedPostgres",
    "EmbeddedUnavailableError",
    "PlannedOrder",
    "Progress",
    "Scenario",
    "ServiceProcess",
    "Stack",
    "audit",
    "embedded_broker_env",
    "free_port",
    "latencies_ms",
    "percentile",
    "plan_orders",
    "seed_catalog",
    "send_orders",
    "status_counts",
    "wait_terminal",
]
