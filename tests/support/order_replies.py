"""Success replies of every order-saga step and compensation, for engine tests that play the participants."""

from __future__ import annotations

from contracts import (
    InventoryReleased,
    InventoryReserved,
    OrderApproved,
    OrderCancelled,
    OrderCreated,
    PaymentCharged,
    PaymentRefunded,
    Reply,
    ShipmentCancelled,
    ShipmentScheduled,
)

ORDER_ID = "o-1"

SUCCESS: dict[str, Reply] = {
    "create_order": OrderCreated(order_id=ORDER_ID),
    "reserve_inventory": InventoryReserved(order_id=ORDER_ID),
    "charge_payment": PaymentCharged(order_id=ORDER_ID, charge_id="ch-1"),
    "schedule_shipment": ShipmentScheduled(order_id=ORDER_ID, shipment_id="sh-1"),
    "approve_order": OrderApproved(order_id=ORDER_ID),
}
UNDONE: dict[str, Reply] = {
    "create_order": OrderCancelled(order_id=ORDER_ID),
    "reserve_inventory": InventoryReleased(order_id=ORDER_ID),
    "charge_payment": PaymentRefunded(order_id=ORDER_ID),
    "schedule_shipment": ShipmentCancelled(order_id=ORDER_ID),
}
