"""Doorbells: once the broker has acknowledged records on a topic, their producer rings the doorbells of that
topic's consumers on this machine, and each fetches at once instead of at the end of its fetch wait.

For a broker that never answers a waiting fetch early (the embedded one), where every hop otherwise waits, on
average, half a fetch wait for its consumer's next poll. With doorbells on (``SAGALINE_FETCH_DOORBELL``), a
consumer's fetches ask the broker to wait 1 ms; between them it waits on its doorbell, for at most the
fetch wait it would have asked for (``FetchWait``), which now bounds only records no doorbell announces (from a
producer without doorbells, or a datagram lost). A ring is only a hint: a lost one delays a record, never loses
it. Apache Kafka wakes a waiting fetch itself and needs none of this.

A doorbell is a Unix datagram socket in a directory that every process using the same bootstrap servers on
this machine shares: ``<tmp>/sagaline-doorbells/<servers>/<topic hash>.<pid>.<n>``. A producer lists it at most
once a second, and removes the sockets of consumers that died."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import hashlib
import itertools
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

log = logging.getLogger(__name__)

LIST_EVERY_S = 1.0
_RING = b"\x01"
_numbers = itertools.count()


def doorbell_dir(bootstrap_servers: str) -> Path:
    """The directory of doorbells shared by every process that uses these bootstrap servers."""
    return Path(tempfile.gettempdir()) / "sagaline-doorbells" / re.sub(r"[^A-Za-z0-9.-]+", "_", bootstrap_servers)


def _topic_key(topic: str) -> str:
    # A hash keeps every socket path short: a Unix socket's path must fit in 107 bytes.
    return hashlib.sha1(topic.encode(), usedforsecurity=False).hexdigest()[:16]


class Ringer:
    """Rings the doorbells of a topic's consumers: one datagram to each, at most one per topic per turn of
    the event loop however many records were acknowledged in it."""

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._dir, self._clock = directory, clock
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.settimeout(0)  # non-blocking
        self._bells: dict[str, list[str]] = {}
        self._listed_at = float("-inf")
        self._pending: set[str] = set()
        self.rung = 0

    def ring_soon(self, topic: str) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._ring_pending)
        self._pending.add(topic)

    def ring(self, topics: Iterable[str]) -> None:
        for topic in topics:
            for path in self._bells_of(topic):
                self._ring_one(topic, path)

    def close(self) -> None:
        self._socket.close()

    def _ring_pending(self) -> None:
        topics, self._pending = self._pending, set()
        self.ring(topics)

    def _ring_one(self, topic: str, path: str) -> None:
        try:
            self._socket.sendto(_RING, path)
            self.rung += 1
        except BlockingIOError:
            pass  # its queue is full: it has been rung already
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self._bells[_topic_key(topic)].remove(path)
            if isinstance(exc, ConnectionRefusedError):  # nobody listens: its consumer died
                with contextlib.suppress(OSError):
                    Path(path).unlink()
        except OSError as exc:
            log.debug("doorbell %s not rung: %s", path, exc)

    def _bells_of(self, topic: str) -> list[str]:
        now = self._clock()
        if now - self._listed_at >= LIST_EVERY_S:
            self._listed_at = now
            self._bells = {}
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self._dir):
                    self._bells.setdefault(entry.name.split(".", 1)[0], []).append(entry.path)
        return self._bells.get(_topic_key(topic), [])


class Doorbell:
    """A consumer's doorbells, one per topic it consumes; ``rung`` is set by a ring on any of them."""

    def __init__(self, directory: Path, topics: Iterable[str]) -> None:
        self._dir = directory
        self._topics = list(topics)
        self._sockets: list[socket.socket] = []
        self._paths: list[str] = []
        self.rung = asyncio.Event()

    def open(self) -> None:
        """Bind the sockets and listen on them from the running event loop (once)."""
        if self._sockets:
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        for topic in self._topics:
            path = str(self._dir / f"{_topic_key(topic)}.{os.getpid()}.{next(_numbers)}")
            Path(path).unlink(missing_ok=True)  # a socket a process of our pid left behind
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.settimeout(0)  # non-blocking
            sock.bind(path)
            self._sockets.append(sock)
            self._paths.append(path)
            loop.add_reader(sock.fileno(), self._drain, sock)
        atexit.register(self._unlink)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._sockets:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = []
        self._unlink()

    def _unlink(self) -> None:
        for path in self._paths:
            Path(path).unlink(missing_ok=True)
        self._paths = []

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                sock.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    log.debug("doorbell read failed: %s", exc)
                break
        self.rung.set()


class DoorbellGate:
    """Holds each fetch of an aiokafka consumer until its doorbell rings, the broker said there is more to
    read, or the wait ``follow`` last set has passed; the fetch itself then asks the broker for its usual
    short wait (the embedded broker answers a 0 ms wait with nothing, and under load a 1 ms one too).

    While the machine is saturated the doorbell is not heeded: each fetch goes out at once and the broker holds
    it for the whole wait, as without doorbells, so that batches grow instead of every ring costing a fetch."""

    def __init__(self, doorbell: Doorbell, *, broker_wait_ms: int) -> None:
        self._doorbell = doorbell
        self._broker_wait_ms = broker_wait_ms
        self._wait_ms = broker_wait_ms
        self._heed = True
        self._fetcher: Any = None
        self._last_brought_records = False

    def follow(self, wait_ms: int, *, saturated: bool) -> None:
        """The fetch wait ``FetchWait`` chose, and whether it chose it because the machine is saturated."""
        self._wait_ms, self._heed = wait_ms, not saturated
        if self._fetcher is not None:  # aiokafka reads it for every fetch request it builds
            self._fetcher._fetch_max_wait_ms = self._broker_wait_ms if self._heed else wait_ms  # noqa: SLF001

    def install(self, consumer: Any) -> None:
        self._doorbell.open()
        self._fetcher = fetcher = consumer._fetcher  # noqa: SLF001 - aiokafka has no hook before a fetch
        self.follow(self._wait_ms, saturated=not self._heed)
        fetch = fetcher._proc_fetch_request  # noqa: SLF001

        async def gated_fetch(assignment: Any, node_id: int, request: Any) -> bool:
            try:
                await self._until_worth_fetching(assignment, request)
            except asyncio.CancelledError:
                return False  # as aiokafka's own fetch does: the assignment changed, or the consumer stops
            self._last_brought_records = bool(await fetch(assignment, node_id, request))
            return self._last_brought_records

        fetcher._proc_fetch_request = gated_fetch  # noqa: SLF001

    async def _until_worth_fetching(self, assignment: Any, request: Any) -> None:
        rung = self._doorbell.rung
        # The high watermark is trusted only after a fetch that brought records: the embedded broker can report
        # one past records it does not hand out yet, and fetching on that would spin.
        more = self._last_brought_records and _behind(assignment, request)
        if self._heed and not rung.is_set() and not more:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rung.wait(), timeout=self._wait_ms / 1000)
        rung.clear()  # before the request goes out: a ring from now on is for records it may not bring


def _behind(assignment: Any, request: Any) -> bool:
    """Whether the last fetch's high watermark says a partition of this request has records left to read."""
    for topic, partitions in request.topics:
        for partition, offset, _ in partitions:
            highwater = assignment.state_value(TopicPartition(topic, partition)).highwater
            if highwater is None or offset < highwater:
                return True
    return False


class RingingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """A producer that rings the doorbells of a topic's consumers once the broker has acknowledged records."""

    def __init__(self, *args: Any, ringer: Ringer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ringer = ringer

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        acked: asyncio.Future[Any] = await super().send(topic, *args, **kwargs)
        acked.add_done_callback(lambda done: self._ring_if_acked(topic, done))
        return acked

    def _ring_if_acked(self, topic: str, done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            self._ringer.ring_soon(topic)

    async def stop(self) -> None:
        await super().stop()
        self._ringer.close()
