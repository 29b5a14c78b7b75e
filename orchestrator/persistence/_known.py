"""The saga states this orchestrator wrote last, so a batch that locks an unchanged row need not read it back."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from orchestrator.definition import SagaState

# Live sagas kept; more than one orchestrator has in flight. The oldest entry goes first when full.
KNOWN_SAGAS_KEPT = 4096


@dataclass(frozen=True)
class RowVersion:
    """Identifies one written version of a saga row: every write adds 1 to ``version``, and ``created_at`` tells
    a saga from an earlier one of the same id that was purged (whose versions counted from 1 too).
    ``last_seq``: the saga's last history entry at that version (each write appends the history with the row)."""

    version: int
    created_at: datetime
    last_seq: int


@dataclass(frozen=True)
class KnownSaga:
    row: RowVersion
    state: SagaState
    trace: Mapping[str, str] | None


class KnownSagas:
    """What this process wrote last for each live saga. A lock that finds the row at the same version uses the
    kept state instead of decoding the row's JSON; any other writer (another orchestrator, an operator's verb)
    bumps the version, and the row is read as before."""

    def __init__(self, capacity: int = KNOWN_SAGAS_KEPT) -> None:
        self._capacity = capacity
        self._sagas: dict[str, KnownSaga] = {}

    def among(self, saga_ids: Collection[str]) -> dict[str, KnownSaga]:
        """The kept sagas among ``saga_ids``, as they are now (later writes and evictions do not change them)."""
        return {saga_id: known for saga_id in saga_ids if (known := self._sagas.get(saga_id)) is not None}

    def get(self, saga_id: str) -> KnownSaga | None:
        return self._sagas.get(saga_id)

    def remember(self, saga_id: str, row: RowVersion, state: SagaState, trace: Mapping[str, str] | None) -> None:
        """Keep a committed write; an ended saga is forgotten (nothing more will change it here)."""
        self._sagas.pop(saga_id, None)  # re-inserted last: the dict's order is the order of last writes
        if not state.status.is_live:
            return
        if len(self._sagas) >= self._capacity:
            del self._sagas[next(iter(self._sagas))]
        self._sagas[saga_id] = KnownSaga(row, state, trace)

    def forget(self, saga_id: str) -> None:
        self._sagas.pop(saga_id, None)

    def __len__(self) -> int:
        return len(self._sagas)
