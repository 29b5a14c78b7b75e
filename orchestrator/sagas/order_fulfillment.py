"""The order saga of DESIGN §3: order → inventory → payment → shipment → approve."""

from __future__ import annotations

from datetime import timedelta

from contracts import (
    ApproveOrder,
    CancelOrder,
    CancelShipment,
    ChargePayment,
    CreateOrder,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    OrderApproved,
    OrderCancelled,
    OrderCreated,
    OrderRejected,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    PlaceOrder,
    RefundPayment,
    ReleaseInventory,
    ReserveInventory,
    ScheduleShipment,
    ShipmentCancelled,
    ShipmentRejected,
    ShipmentScheduled,
)
from orchestrator.definition import Compensation, RetryPolicy, SagaContext, SagaDefinition, saga

Ctx = SagaContext[PlaceOrder]

PAYMENT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=6,
)

# Compensations are retried longer than steps (giving up means an operator must step in), but an outage
# that outlasts this policy should reach `failed` quickly enough to be seen and resumed.
UNDO_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=1),
    maximum_attempts=6,
)

ORDER_FULFILLMENT: SagaDefinition[PlaceOrder] = (
    saga("order_fulfillment", start=PlaceOrder, time_to_live=timedelta(minutes=5), saga_id_of=lambda c: c.saga_id)
    .step(
        "create_order",
        participant="order",
        command=CreateOrder,
        build=lambda c: CreateOrder(
            order_id=c.input.order_id,
            customer_id=c.input.customer_id,
            amount_cents=c.input.amount_cents,
        ),
        replies=(OrderCreated,),
        failures=(OrderRejected,),
        compensation=Compensation(
            command=CancelOrder,
            build=lambda c: CancelOrder(order_id=c.input.order_id),
            replies=(OrderCancelled,),
            retry=UNDO_RETRY,
        ),
    )
    .step(
        "reserve_inventory",
        participant="inventory",
        command=ReserveInventory,
        build=lambda c: ReserveInventory(order_id=c.input.order_id, items=c.input.items),
        replies=(InventoryReserved,),
        failures=(InventoryReservationFailed,),
        compensation=Compensation(
            command=ReleaseInventory,
            build=lambda c: ReleaseInventory(order_id=c.input.order_id),
            replies=(InventoryReleased,),
            retry=UNDO_RETRY,
        ),
    )
    .step(
        "charge_payment",
        participant="payment",
        command=ChargePayment,
        build=lambda c: ChargePayment(
            order_id=c.input.order_id,
            customer_id=c.input.customer_id,
            amount_cents=c.input.amount_cents,
        ),
        replies=(PaymentCharged,),
        failures=(PaymentDeclined,),
        retry=PAYMENT_RETRY,
        compensation=Compensation(
            command=RefundPayment,
            build=lambda c: RefundPayment(order_id=c.input.order_id),
            replies=(PaymentRefunded,),
            retry=UNDO_RETRY,
        ),
    )
    .step(
        "schedule_shipment",
        participant="shipment",
        command=ScheduleShipment,
        build=lambda c: ScheduleShipment(order_id=c.input.order_id, address=c.input.address),
        replies=(ShipmentScheduled,),
        failures=(ShipmentRejected,),
        compensation=Compensation(
            command=CancelShipment,
            build=lambda c: CancelShipment(order_id=c.input.order_id),
            replies=(ShipmentCancelled,),
            retry=UNDO_RETRY,
        ),
    )
    .step(
        "approve_order",
        participant="order",
        command=ApproveOrder,
        build=lambda c: ApproveOrder(order_id=c.input.order_id),
        replies=(OrderApproved,),
    )
    .build()
)
