"""The shipment service: schedules one shipment per order to served countries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Column, MetaData, Table, Text, update
from sqlalchemy.dialects.postgresql import insert

from contracts import CancelShipment, Reply, ScheduleShipment, ShipmentCancelled, ShipmentRejected, ShipmentScheduled
from participants.kit import BatchTransaction, LocalTransaction, Participant

SCHEMA = "shipment_svc"

metadata = MetaData(schema=SCHEMA)
shipment_table = Table(
    "shipment",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("shipment_id", Text, nullable=False),
    Column("country", Text),
    Column("status", Text, nullable=False),
)

shipment = Participant("shipment", metadata=metadata)

# The hot statement as fixed SQL on the driver connection (``tx.sql``), for every shipment of a batch handler call.
_SCHEDULE = f"""
INSERT INTO {SCHEMA}.shipment (order_id, shipment_id, country, status)
SELECT order_id, shipment_id, country, 'scheduled'
FROM unnest($1::text[], $2::text[], $3::text[]) AS s(order_id, shipment_id, country)
ON CONFLICT DO NOTHING RETURNING order_id"""  # noqa: S608 - constant


def unserved(countries: str) -> frozenset[str]:
    return frozenset(c.strip().upper() for c in countries.split(",") if c.strip())


@shipment.handles_batch(ScheduleShipment)
async def schedule(tx: BatchTransaction, cmds: Sequence[ScheduleShipment]) -> list[Reply]:
    refused = unserved(tx.settings.shipment_unserved_countries)
    first: dict[str, tuple[ScheduleShipment, str]] = {}  # an order's first served command and its shipment id
    for cmd in cmds:
        if cmd.address.country.upper() not in refused and cmd.order_id not in first:
            first[cmd.order_id] = (cmd, str(uuid.uuid4()))
    rows = await tx.sql.fetch(
        _SCHEDULE,
        list(first),
        [shipment_id for _, shipment_id in first.values()],
        [cmd.address.country.upper() for cmd, _ in first.values()],
    )
    scheduled = {r["order_id"] for r in rows}
    replies: list[Reply] = []
    for cmd in cmds:
        country = cmd.address.country.upper()
        if country in refused:
            replies.append(ShipmentRejected(order_id=cmd.order_id, reason=f"we do not ship to {country}"))
        elif first[cmd.order_id][0] is cmd and cmd.order_id in scheduled:
            replies.append(ShipmentScheduled(order_id=cmd.order_id, shipment_id=first[cmd.order_id][1]))
        else:
            replies.append(ShipmentRejected(order_id=cmd.order_id, reason="order already has a shipment record"))
    return replies


@shipment.handles(CancelShipment)
async def cancel(tx: LocalTransaction, cmd: CancelShipment) -> Reply:
    await tx.connection.execute(
        insert(shipment_table)
        .values(order_id=cmd.order_id, shipment_id="none", status="cancelled")
        .on_conflict_do_nothing(),
    )
    await tx.connection.execute(
        update(shipment_table).where(shipment_table.c.order_id == cmd.order_id).values(status="cancelled"),
    )
    return ShipmentCancelled(order_id=cmd.order_id)
