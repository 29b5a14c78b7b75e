"""The payment service: customers with a credit limit, one charge per order, refunds."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import BigInteger, Column, Index, MetaData, Table, Text, bindparam, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert

from contracts import (
    ChargePayment,
    CommandFailed,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
    Reply,
)
from participants.kit import LocalTransaction, Participant

SCHEMA = "payment_svc"

metadata = MetaData(schema=SCHEMA)
customer = Table(
    "customer",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("credit_limit_cents", BigInteger, nullable=False),
)
charge = Table(
    "charge",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("charge_id", Text, nullable=False),
    Column("customer_id", Text),
    Column("amount_cents", BigInteger, nullable=False, server_default=text("0")),
    Column("status", Text, nullable=False),
    Index("charge_customer_charged_idx", "customer_id", postgresql_where=text("status = 'charged'")),
)

payment = Participant("payment", metadata=metadata)

# Built once, executed with parameters: SQLAlchemy then skips building and keying the statement per command.
_charge_status = select(charge.c.status).where(charge.c.order_id == bindparam("order"))
# Locking the customer serialises a customer's charges; the order's charge comes back in the same round trip
# (the primary key refuses a concurrent second one).
_lock_customer = (
    select(customer.c.credit_limit_cents, _charge_status.scalar_subquery().label("existing"))
    .where(customer.c.customer_id == bindparam("customer"))
    .with_for_update(of=customer)
)
# A statement after the lock sees every charge committed before it, so the sum is the customer's outstanding.
_outstanding = select(func.coalesce(func.sum(charge.c.amount_cents), 0)).where(
    (charge.c.customer_id == bindparam("customer")) & (charge.c.status == "charged")
)
# The limit check and the charge in one round trip: a row is inserted only when the charge fits.
_charge_within_limit = (
    insert(charge)
    .from_select(
        ["order_id", "charge_id", "customer_id", "amount_cents", "status"],
        select(
            bindparam("order", type_=Text),
            bindparam("charge", type_=Text),
            bindparam("customer", type_=Text),
            bindparam("amount", type_=BigInteger),
            literal("charged", Text),
        ).where(
            _outstanding.scalar_subquery() + bindparam("amount", type_=BigInteger)
            <= bindparam("limit", type_=BigInteger)
        ),
    )
    .returning(charge.c.charge_id)
)


class GatewayGlitches:
    """Injects retryable gateway failures at a configured rate (demo and chaos runs)."""

    def __init__(self) -> None:
        self._random: random.Random | None = None

    def strikes(self, rate: float, seed: int | None) -> bool:
        if rate <= 0:
            return False
        if self._random is None:
            self._random = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
        return self._random.random() < rate


_glitches = GatewayGlitches()


@payment.handles(ChargePayment)
async def charge_payment(tx: LocalTransaction, cmd: ChargePayment) -> Reply:
    if _glitches.strikes(tx.settings.payment_glitch_rate, tx.settings.payment_glitch_seed):
        return PaymentDeclined(
            order_id=cmd.order_id, reason="payment gateway timed out", retryable=True, error_type="gateway-glitch"
        )
    account = (await tx.session.execute(_lock_customer, {"customer": cmd.customer_id, "order": cmd.order_id})).first()
    if account is None:
        return PaymentDeclined(order_id=cmd.order_id, reason=f"unknown customer {cmd.customer_id}")
    if account.existing is not None:
        return PaymentDeclined(order_id=cmd.order_id, reason=f"order already has a {account.existing} charge")
    limit = account.credit_limit_cents
    charged = await tx.session.execute(
        _charge_within_limit,
        {
            "order": cmd.order_id,
            "charge": str(uuid.uuid4()),
            "customer": cmd.customer_id,
            "amount": cmd.amount_cents,
            "limit": limit,
        },
    )
    charge_id = charged.scalar_one_or_none()
    if charge_id is None:
        outstanding = (await tx.session.execute(_outstanding, {"customer": cmd.customer_id})).scalar_one()
        return PaymentDeclined(
            order_id=cmd.order_id,
            reason=f"over the credit limit: {outstanding} + {cmd.amount_cents} > {limit} cents",
        )
    return PaymentCharged(order_id=cmd.order_id, charge_id=charge_id)


@payment.handles(RefundPayment)
async def refund_payment(tx: LocalTransaction, cmd: RefundPayment) -> Reply:
    if tx.settings.payment_refunds_down:
        return CommandFailed(reason="refund gateway unavailable", retryable=True, error_type="gateway-down")
    # Refund before charge leaves a tombstone, so a late charge for the order is declined.
    await tx.session.execute(
        insert(charge).values(order_id=cmd.order_id, charge_id="none", status="refunded").on_conflict_do_nothing(),
    )
    await tx.session.execute(update(charge).where(charge.c.order_id == cmd.order_id).values(status="refunded"))
    return PaymentRefunded(order_id=cmd.order_id)
