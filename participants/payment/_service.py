"""The payment service: customers with a credit limit, one charge per order, refunds."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import BigInteger, Column, Index, MetaData, Table, Text, text, update
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

# Hot statements as fixed SQL on the driver connection (``tx.sql``). Locking the customer serialises a
# customer's charges; the order's charge comes back in the same round trip (the primary key refuses a concurrent
# second one).
_LOCK_CUSTOMER = f"""
SELECT c.credit_limit_cents, (SELECT ch.status FROM {SCHEMA}.charge ch WHERE ch.order_id = $2::text) AS existing
FROM {SCHEMA}.customer c WHERE c.customer_id = $1::text FOR UPDATE OF c"""  # noqa: S608 - constant
# A statement after the lock sees every charge committed before it, so the sum is the customer's outstanding.
_OUTSTANDING = f"""
SELECT coalesce(sum(amount_cents), 0) FROM {SCHEMA}.charge
WHERE customer_id = $1::text AND status = 'charged'"""  # noqa: S608
# The limit check and the charge in one round trip: a row is inserted only when the charge fits.
_CHARGE_WITHIN_LIMIT = f"""
INSERT INTO {SCHEMA}.charge (order_id, charge_id, customer_id, amount_cents, status)
SELECT $2::text, $3::text, $1::text, $4::bigint, 'charged'
WHERE ({_OUTSTANDING}) + $4::bigint <= $5::bigint
RETURNING charge_id"""


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
    account = await tx.sql.fetchrow(_LOCK_CUSTOMER, cmd.customer_id, cmd.order_id)
    if account is None:
        return PaymentDeclined(order_id=cmd.order_id, reason=f"unknown customer {cmd.customer_id}")
    if account["existing"] is not None:
        return PaymentDeclined(order_id=cmd.order_id, reason=f"order already has a {account['existing']} charge")
    limit = account["credit_limit_cents"]
    charge_id = await tx.sql.fetchval(
        _CHARGE_WITHIN_LIMIT, cmd.customer_id, cmd.order_id, str(uuid.uuid4()), cmd.amount_cents, limit
    )
    if charge_id is None:
        outstanding = await tx.sql.fetchval(_OUTSTANDING, cmd.customer_id)
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
