"""Service processes: spawn, wait until ready, kill, restart. Used by the demo, the chaos run and the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from contracts import PARTICIPANTS

SERVICES = ("orchestrator", *PARTICIPANTS)


RELAY = "relay"  # an extra, standalone relay of the orchestrator's outbox (chaos runs kill it too)


def service_command(service: str) -> list[str]:
    base = [sys.executable, "-m", "orchestrator.cli"]
    if service == "orchestrator":
        return [*base, "orchestrator"]
    if service == RELAY:
        return [*base, "relay", "orchestrator"]
    return [*base, "participant", service]


def ready_marker(service: str) -> bytes:
    name = "orchestrator-relay" if service == RELAY else service
    return f"sagaline {name} ready".encode()


def embedded_broker_env() -> dict[str, str]:
    """Consumer timings for the embedded broker (it holds joins for half the session timeout and
    never wakes a waiting fetch). A value the environment sets wins."""
    defaults = {
        "SAGALINE_FETCH_MAX_WAIT_MS": "10",
        # An idle consumer asks a tenth as often (an idle stack used half a core polling at 10 ms); the first
        # record after two quiet seconds waits up to 100 ms (orchestrator/messaging/_fetch_wait.py).
        "SAGALINE_FETCH_IDLE_MAX_WAIT_MS": "100",
        # While the machine's CPUs are saturated, fewer and larger batches: at 250 sagas/s on two cores CPU per saga
        # 7.0 -> 5.5-5.7 ms (orchestrator/messaging/_fetch_wait.py; bench/RESULTS.md, step 12).
        "SAGALINE_FETCH_SATURATED_WAIT_MS": "50",
        "SAGALINE_SESSION_TIMEOUT_MS": "3000",
        "SAGALINE_HEARTBEAT_INTERVAL_MS": "1000",
        # Concurrent producers to one partition can make it hand a following consumer records past ones not yet
        # readable: re-fetch from the first offset not seen (orchestrator/messaging/_gaps.py).
        "SAGALINE_REFETCH_GAPS": "true",
        # Its groups hand a rejoining member the partitions it had, whatever the leader assigns now
        # (orchestrator/messaging/_assignment.py).
        "SAGALINE_REJOIN_UNASSIGNED": "true",
        # This broker's cost per fetch grows with the batches held in each partition fetched that has new
        # records. Eight partitions taken in turn, a second each, by every producer (the events topic keeps one,
        # for its order), and each consumer fetches only the partition of the turn (orchestrator/messaging/
        # _rotation.py): a partition holds an eighth of the batches, and a fetch carries one partition a topic
        # (broker CPU at 250 sagas/s a third lower; bench/RESULTS.md, step 17). Our clients never have it
        # auto-create a topic after a restart; the services' topic guard re-creates them with this count
        # (orchestrator/messaging/_no_auto_create.py).
        "SAGALINE_TOPIC_PARTITIONS": "8",
        "SAGALINE_PARTITION_ROTATION_S": "1",
    }
    return {name: os.environ.get(name, value) for name, value in defaults.items()}


@dataclass
class ServiceProcess:
    name: str
    env: Mapping[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    _log_offset: int = field(default=0, repr=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                service_command(self.name),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.starts += 1

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        marker = ready_marker(self.name)
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited before it was ready; see {self.log_path}:\n{self.tail()}")
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                if marker in log.read():
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s; see {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, as in a crash."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self, timeout_s: float = 10) -> None:
        if not self.alive:
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class Cluster:
    """The orchestrator and the four participants, each its own OS process."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, services: tuple[str, ...] = SERVICES) -> None:
        self.services = {name: ServiceProcess(name=name, env=dict(env), log_dir=log_dir) for name in services}

    def start(self, timeout_s: float = 90) -> None:
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            service.wait_ready(timeout_s)

    def restart(self, name: str, *, kill: bool = True) -> None:
        service = self.services[name]
        if kill:
            service.kill()
        else:
            service.stop()
        service.start()

    def stop(self) -> None:
        for service in self.services.values():
            if service.alive and service.process is not None:
                service.process.terminate()
        for service in self.services.values():
            service.stop()

    @property
    def kills(self) -> int:
        return sum(s.kills for s in self.services.values())

    @property
    def restarts(self) -> int:
        return sum(max(s.starts - 1, 0) for s in self.services.values())
