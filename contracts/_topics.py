"""Topic names, all under one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

PARTICIPANTS = ("order", "inventory", "payment", "shipment")


@dataclass(frozen=True, kw_only=True)
class Topics:
    """Every topic Sagaline uses. ``Topics(prefix="acme.")`` gives ``acme.saga.start`` and so on."""

    prefix: str = ""

    @property
    def start(self) -> str:
        return f"{self.prefix}saga.start"

    @property
    def replies(self) -> str:
        return f"{self.prefix}saga.replies"

    @property
    def events(self) -> str:
        return f"{self.prefix}saga.events"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}saga.dlq"

    def commands(self, participant: str) -> str:
        return f"{self.prefix}{participant}.commands"

    def all(self) -> tuple[str, ...]:
        return (
            self.start,
            self.replies,
            self.events,
            self.dlq,
            *(self.commands(p) for p in PARTICIPANTS),
        )
