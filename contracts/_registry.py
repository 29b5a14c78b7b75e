"""The registry from a message's ``type`` to its model, and decoding of bodies through it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from contracts import _events, _order
from contracts._base import Message


class ContractError(ValueError):
    """A body could not be turned into a known, valid message. ``reason`` is a short code for dashboards."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Registry:
    """Maps ``type`` names to models. Immutable once built."""

    def __init__(self, models: Iterable[type[Message]]) -> None:
        by_type: dict[str, type[Message]] = {}
        for model in models:
            name = model.type_name()
            if name in by_type:
                msg = f"two models claim type {name!r}: {by_type[name].__name__} and {model.__name__}"
                raise ValueError(msg)
            by_type[name] = model
        self._by_type = by_type

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._by_type

    def models(self) -> tuple[type[Message], ...]:
        return tuple(self._by_type.values())

    def model(self, type_name: str) -> type[Message]:
        try:
            return self._by_type[type_name]
        except KeyError:
            raise ContractError("unknown-type", f"no message type {type_name!r}") from None

    def decode_value(self, value: Any) -> Message:
        """A message from an already-parsed JSON value (history, stored replies)."""
        return self.decode(json.dumps(value).encode())

    def decode(self, body: bytes, type_hint: str | None = None) -> Message:
        """Parse a JSON body. The body's own ``type`` wins; ``type_hint`` (from headers) must agree."""
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContractError("undecodable", f"body is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ContractError("schema-invalid", f"body must be a JSON object, got {type(raw).__name__}")
        body_type = raw.get("type", type_hint)
        if not isinstance(body_type, str):
            raise ContractError("schema-invalid", "body has no string `type` field and no type header")
        model = self.model(body_type)
        if type_hint is not None and type_hint != body_type:
            raise ContractError("schema-invalid", f"type header {type_hint!r} disagrees with body type {body_type!r}")
        try:
            return model.model_validate({**raw, "type": body_type})
        except ValidationError as exc:
            raise ContractError("schema-invalid", str(exc.errors(include_url=False))) from exc


ORDER_SAGA_MESSAGES: tuple[type[Message], ...] = (
    _order.PlaceOrder,
    _order.CreateOrder,
    _order.OrderCreated,
    _order.OrderRejected,
    _order.CancelOrder,
    _order.OrderCancelled,
    _order.ApproveOrder,
    _order.OrderApproved,
    _order.ReserveInventory,
    _order.InventoryReserved,
    _order.InventoryReservationFailed,
    _order.ReleaseInventory,
    _order.InventoryReleased,
    _order.ChargePayment,
    _order.PaymentCharged,
    _order.PaymentDeclined,
    _order.RefundPayment,
    _order.PaymentRefunded,
    _order.ScheduleShipment,
    _order.ShipmentScheduled,
    _order.ShipmentRejected,
    _order.CancelShipment,
    _order.ShipmentCancelled,
    _order.CommandFailed,
    _events.SagaStarted,
    _events.SagaCompleted,
    _events.SagaCompensationStarted,
    _events.SagaCompensated,
    _events.SagaFailed,
)

REGISTRY = Registry(ORDER_SAGA_MESSAGES)
