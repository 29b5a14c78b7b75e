"""The payment service: customers with a credit limit, one charge per order, refunds."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence

from sqlalchemy import BigInteger, Column, MetaData, Table, Text, text

from contracts import (
    ChargePayment,
    CommandFailed,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
    Reply,
)
from orchestrator.settings import Settings
from participants.kit import BatchTransaction, LocalTransaction, Participant

SCHEMA = "payment_svc"

metadata = MetaData(schema=SCHEMA)
customer = Table(
    "customer",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("credit_limit_cents", BigInteger, nullable=False),
    Column("outstanding_cents", BigInteger, nullable=False, server_default=text("0")),
)
charge = Table(
    "charge",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("charge_id", Text, nullable=False),
    Column("customer_id", Text),
    Column("amount_cents", BigInteger, nullable=False, server_default=text("0")),
    Column("status", Text, nullable=False),
)

payment = Participant("payment", metadata=metadata)

# Hot statements as fixed SQL on the driver connection (``tx.sql``). Each customer's outstanding balance is kept on
# its row, under the row lock that serialises its charges: a credit check costs the same after a million charges.
# The customers are locked in id order (concurrent calls never deadlock); the orders' charges come back in the same
# round trip (the primary key refuses a concurrent second one).
_LOCK_CUSTOMERS = f"""
SELECT 'customer' AS kind, customer_id AS key, credit_limit_cents AS cents, outstanding_cents AS owed, NULL AS status
FROM (
    SELECT customer_id, credit_limit_cents, outstanding_cents FROM {SCHEMA}.customer
    WHERE customer_id = ANY($1::text[]) ORDER BY customer_id FOR UPDATE
) AS c
UNION ALL
SELECT 'order', order_id, NULL, NULL, status FROM {SCHEMA}.charge WHERE order_id = ANY($2::text[])"""  # noqa: S608
# The granted charges inserted and added to their customers' balances in one round trip.
_INSERT_CHARGES = f"""
WITH charged AS (
    INSERT INTO {SCHEMA}.charge (order_id, charge_id, customer_id, amount_cents, status)
    SELECT order_id, charge_id, customer_id, amount_cents, 'charged'
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS c(order_id, charge_id, customer_id, amount_cents)
    RETURNING customer_id, amount_cents
)
UPDATE {SCHEMA}.customer AS c SET outstanding_cents = c.outstanding_cents + t.cents
FROM (SELECT customer_id, sum(amount_cents) AS cents FROM charged GROUP BY customer_id) AS t
WHERE c.customer_id = t.customer_id"""  # noqa: S608
# A refund takes the charge off its customer's balance; before any charge it leaves a tombstone, so a late charge
# for the order is declined.
_REFUND = text(f"""
WITH refunded AS (
    UPDATE {SCHEMA}.charge SET status = 'refunded' WHERE order_id = :order_id AND status = 'charged'
    RETURNING customer_id, amount_cents
), balance AS (
    UPDATE {SCHEMA}.customer AS c SET outstanding_cents = c.outstanding_cents - r.amount_cents
    FROM refunded AS r WHERE c.customer_id = r.customer_id
)
INSERT INTO {SCHEMA}.charge (order_id, charge_id, status) VALUES (:order_id, 'none', 'refunded')
ON CONFLICT (order_id) DO NOTHING""")  # noqa: S608


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


def _glitch(settings: Settings, cmd: ChargePayment) -> Reply | None:
    if _glitches.strikes(settings.payment_glitch_rate, settings.payment_glitch_seed):
        return PaymentDeclined(
            order_id=cmd.order_id, reason="payment gateway timed out", retryable=True, error_type="gateway-glitch"
        )
    return None


@payment.handles_batch(ChargePayment)
async def charge_payment(tx: BatchTransaction, cmds: Sequence[ChargePayment]) -> list[Reply]:
    """Charges in order: each one granted counts towards the limit the next is checked against. Two round trips
    for any number of charges: the lock (with the balances and the orders' charges), then the write."""
    glitched = [_glitch(tx.settings, cmd) for cmd in cmds]
    charges = [cmd for cmd, glitch in zip(cmds, glitched, strict=True) if glitch is None]
    if not charges:
        return [glitch for glitch in glitched if glitch is not None]
    rows = await tx.sql.fetch(
        _LOCK_CUSTOMERS, sorted({cmd.customer_id for cmd in charges}), sorted({cmd.order_id for cmd in charges})
    )
    limits = {r["key"]: r["cents"] for r in rows if r["kind"] == "customer"}
    outstanding = {r["key"]: r["owed"] for r in rows if r["kind"] == "customer"}
    existing = {r["key"]: r["status"] for r in rows if r["kind"] == "order"}
    granted: list[tuple[ChargePayment, str]] = []
    replies: list[Reply] = []
    for cmd, glitch in zip(cmds, glitched, strict=True):
        owed = outstanding.get(cmd.customer_id, 0)
        reply = glitch or _decide(cmd, limits.get(cmd.customer_id), existing.get(cmd.order_id), owed)
        if reply is None:
            charge_id = str(uuid.uuid4())
            outstanding[cmd.customer_id] = owed + cmd.amount_cents
            existing[cmd.order_id] = "charged"
            granted.append((cmd, charge_id))
            reply = PaymentCharged(order_id=cmd.order_id, charge_id=charge_id)
        replies.append(reply)
    if granted:
        await tx.sql.execute(
            _INSERT_CHARGES,
            [cmd.order_id for cmd, _ in granted],
            [charge_id for _, charge_id in granted],
            [cmd.customer_id for cmd, _ in granted],
            [cmd.amount_cents for cmd, _ in granted],
        )
    return replies


def _decide(cmd: ChargePayment, limit: int | None, existing: str | None, owed: int) -> Reply | None:
    """The decline for this charge, or None when it is to be granted: ``limit`` None for an unknown customer,
    ``existing`` the order's charge if it has one, ``owed`` the customer's outstanding balance."""
    if limit is None:
        return PaymentDeclined(order_id=cmd.order_id, reason=f"unknown customer {cmd.customer_id}")
    if existing is not None:
        return PaymentDeclined(order_id=cmd.order_id, reason=f"order already has a {existing} charge")
    if owed + cmd.amount_cents > limit:
        return PaymentDeclined(
            order_id=cmd.order_id, reason=f"over the credit limit: {owed} + {cmd.amount_cents} > {limit} cents"
        )
    return None


@payment.handles(RefundPayment)
async def refund_payment(tx: LocalTransaction, cmd: RefundPayment) -> Reply:
    if tx.settings.payment_refunds_down:
        return CommandFailed(reason="refund gateway unavailable", retryable=True, error_type="gateway-down")
    await tx.connection.execute(_REFUND, {"order_id": cmd.order_id})
    return PaymentRefunded(order_id=cmd.order_id)
