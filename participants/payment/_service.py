"""The payment service: customers with a credit limit, one charge per order, refunds."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence

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
from orchestrator.settings import Settings
from participants.kit import BatchTransaction, LocalTransaction, Participant, Sql

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
# For a call with several charges: the customers locked (in id order, so concurrent calls never deadlock) and the
# orders' charges read in one round trip; then, in a statement after the lock, what each customer owes; then the
# granted charges inserted together.
_LOCK_CUSTOMERS = f"""
SELECT 'customer' AS kind, customer_id AS key, credit_limit_cents AS cents, NULL AS status
FROM (
    SELECT customer_id, credit_limit_cents FROM {SCHEMA}.customer WHERE customer_id = ANY($1::text[])
    ORDER BY customer_id FOR UPDATE
) AS c
UNION ALL
SELECT 'order', order_id, NULL, status FROM {SCHEMA}.charge WHERE order_id = ANY($2::text[])"""  # noqa: S608
_OUTSTANDING_OF = f"""
SELECT customer_id, sum(amount_cents) AS cents FROM {SCHEMA}.charge
WHERE customer_id = ANY($1::text[]) AND status = 'charged' GROUP BY customer_id"""  # noqa: S608
_INSERT_CHARGES = f"""
INSERT INTO {SCHEMA}.charge (order_id, charge_id, customer_id, amount_cents, status)
SELECT order_id, charge_id, customer_id, amount_cents, 'charged'
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS c(order_id, charge_id, customer_id, amount_cents)"""  # noqa: S608


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
    """Charges in order: each one granted counts towards the limit the next is checked against."""
    if len(cmds) == 1:
        return [_glitch(tx.settings, cmds[0]) or await _charge_one(tx.sql, cmds[0])]
    glitched = [_glitch(tx.settings, cmd) for cmd in cmds]
    charges = [cmd for cmd, glitch in zip(cmds, glitched, strict=True) if glitch is None]
    rows = await tx.sql.fetch(
        _LOCK_CUSTOMERS, sorted({cmd.customer_id for cmd in charges}), sorted({cmd.order_id for cmd in charges})
    )
    limits = {r["key"]: r["cents"] for r in rows if r["kind"] == "customer"}
    existing = {r["key"]: r["status"] for r in rows if r["kind"] == "order"}
    outstanding = {r["customer_id"]: r["cents"] for r in await tx.sql.fetch(_OUTSTANDING_OF, sorted(limits))}
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


def _decide(cmd: ChargePayment, limit: int | None, existing: str | None, owed: int | None) -> Reply | None:
    """The decline for this charge, or None when it is to be granted: ``limit`` None for an unknown customer,
    ``existing`` the order's charge if it has one, ``owed`` what the customer owes (None: not checked here)."""
    if limit is None:
        return PaymentDeclined(order_id=cmd.order_id, reason=f"unknown customer {cmd.customer_id}")
    if existing is not None:
        return PaymentDeclined(order_id=cmd.order_id, reason=f"order already has a {existing} charge")
    if owed is not None and owed + cmd.amount_cents > limit:
        return PaymentDeclined(
            order_id=cmd.order_id, reason=f"over the credit limit: {owed} + {cmd.amount_cents} > {limit} cents"
        )
    return None


async def _charge_one(sql: Sql, cmd: ChargePayment) -> Reply:
    """One charge in two round trips (a call with a single command): the insert itself checks the limit."""
    account = await sql.fetchrow(_LOCK_CUSTOMER, cmd.customer_id, cmd.order_id)
    limit = account["credit_limit_cents"] if account is not None else None
    declined = _decide(cmd, limit, account["existing"] if account is not None else None, owed=None)
    if declined is not None:
        return declined
    charge_id = await sql.fetchval(
        _CHARGE_WITHIN_LIMIT, cmd.customer_id, cmd.order_id, str(uuid.uuid4()), cmd.amount_cents, limit
    )
    if charge_id is None:  # over the limit: read what is owed for the decline's reason
        over = _decide(cmd, limit, None, owed=await sql.fetchval(_OUTSTANDING, cmd.customer_id))
        assert over is not None, "the insert refused a charge within the limit"
        return over
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
