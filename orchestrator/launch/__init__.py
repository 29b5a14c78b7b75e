"""Running a whole stack locally: embedded infrastructure, service processes, data, driver, audit."""

from orchestrator.launch._audit import AuditReport, audit
from orchestrator.launch._catalog import FAILING, PlannedOrder, Scenario, plan_orders, seed_catalog
from orchestrator.launch._chaos import ChaosMonkey, ChaosReport, ChaosRun, run_with_chaos
from orchestrator.launch._driver import (
    Progress,
    latencies_ms,
    missing_sagas,
    percentile,
    send_orders,
    send_start,
    status_counts,
    wait_terminal,
)
from orchestrator.launch._embedded import EmbeddedBroker, EmbeddedPostgres, EmbeddedUnavailableError, free_port
from orchestrator.launch._processes import RELAY, SERVICES, Cluster, ServiceProcess, embedded_broker_env
from orchestrator.launch._stack import Stack

__all__ = [
    "FAILING",
    "RELAY",
    "SERVICES",
    "AuditReport",
    "ChaosMonkey",
    "ChaosReport",
    "ChaosRun",
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
    "missing_sagas",
    "percentile",
    "plan_orders",
    "run_with_chaos",
    "seed_catalog",
    "send_orders",
    "send_start",
    "status_counts",
    "wait_terminal",
]
