"""The order saga's start command, participant commands and replies (DESIGN §3)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts._base import Command, FailureReply, StartCommand, SuccessReply


class LineItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=10_000)
    unit_price_cents: int = Field(ge=0)


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    line1: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")


class PlaceOrder(StartCommand):
    """Starts an ``order_fulfillment`` saga. ``order_id`` doubles as the saga id when ``saga_id`` is absent."""

    type: Literal["PlaceOrder"] = "PlaceOrder"
    order_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    items: tuple[LineItem, ...] = Field(min_length=1)
    address: Address
    saga_id: str | None = Field(default=None, max_length=64)

    @property
    def amount_cents(self) -> int:
        return sum(item.quantity * item.unit_price_cents for item in self.items)


# --- order service -----------------------------------------------------------------------------


class CreateOrder(Command):
    type: Literal["CreateOrder"] = "CreateOrder"
    order_id: str
    customer_id: str
    amount_cents: int = Field(ge=0)


class OrderCreated(SuccessReply):
    type: Literal["OrderCreated"] = "OrderCreated"
    order_id: str


class OrderRejected(FailureReply):
    """The order service refuses the order (over the maximum order value)."""

    type: Literal["OrderRejected"] = "OrderRejected"
    order_id: str


class CancelOrder(Command):
    type: Literal["CancelOrder"] = "CancelOrder"
    order_id: str


class OrderCancelled(SuccessReply):
    type: Literal["OrderCancelled"] = "OrderCancelled"
    order_id: str


class ApproveOrder(Command):
    type: Literal["ApproveOrder"] = "ApproveOrder"
    order_id: str


class OrderApproved(SuccessReply):
    type: Literal["OrderApproved"] = "OrderApproved"
    order_id: str


# --- inventory service -------------------------------------------------------------------------


class ReserveInventory(Command):
    type: Literal["ReserveInventory"] = "ReserveInventory"
    order_id: str
    items: tuple[LineItem, ...]


class InventoryReserved(SuccessReply):
    type: Literal["InventoryReserved"] = "InventoryReserved"
    order_id: str


class InventoryReservationFailed(FailureReply):
    type: Literal["InventoryReservationFailed"] = "InventoryReservationFailed"
    order_id: str


class ReleaseInventory(Command):
    type: Literal["ReleaseInventory"] = "ReleaseInventory"
    order_id: str


class InventoryReleased(SuccessReply):
    type: Literal["InventoryReleased"] = "InventoryReleased"
    order_id: str


# --- payment service ---------------------------------------------------------------------------


class ChargePayment(Command):
    type: Literal["ChargePayment"] = "ChargePayment"
    order_id: str
    customer_id: str
    amount_cents: int = Field(ge=0)


class PaymentCharged(SuccessReply):
    type: Literal["PaymentCharged"] = "PaymentCharged"
    order_id: str
    charge_id: str


class PaymentDeclined(FailureReply):
    type: Literal["PaymentDeclined"] = "PaymentDeclined"
    order_id: str


class RefundPayment(Command):
    type: Literal["RefundPayment"] = "RefundPayment"
    order_id: str


class PaymentRefunded(SuccessReply):
    type: Literal["PaymentRefunded"] = "PaymentRefunded"
    order_id: str


# --- shipment service --------------------------------------------------------------------------


class ScheduleShipment(Command):
    type: Literal["ScheduleShipment"] = "ScheduleShipment"
    order_id: str
    address: Address


class ShipmentScheduled(SuccessReply):
    type: Literal["ShipmentScheduled"] = "ShipmentScheduled"
    order_id: str
    shipment_id: str


class ShipmentRejected(FailureReply):
    type: Literal["ShipmentRejected"] = "ShipmentRejected"
    order_id: str


class CancelShipment(Command):
    type: Literal["CancelShipment"] = "CancelShipment"
    order_id: str


class ShipmentCancelled(SuccessReply):
    type: Literal["ShipmentCancelled"] = "ShipmentCancelled"
    order_id: str


# --- any participant ---------------------------------------------------------------------------


class CommandFailed(FailureReply):
    """Sent by the participant kit when a handler raised instead of replying (any command)."""

    type: Literal["CommandFailed"] = "CommandFailed"
