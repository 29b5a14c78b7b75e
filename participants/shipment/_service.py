"""The shipment service: schedules one shipment per order to served countries."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, MetaData, Table, Text, update
from sqlalchemy.dialects.postgresql import insert

from contracts import CancelShipment, Reply, ScheduleShipment, ShipmentCancelled, ShipmentRejected, ShipmentScheduled
from participants.kit import LocalTransaction, Participant

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

# The hot statement as fixed SQL on the driver connection (``tx.sql``).
_SCHEDULE = f"""
INSERT INTO {SCHEMA}.shipment (order_id, shipment_id, country, status)
VALUES ($1::text, $2::text, $3::text, 'scheduled')
ON CONFLICT DO NOTHING RETURNING order_id"""  # noqa: S608 - constant


def unserved(countries: str) -> frozenset[str]:
    return frozenset(c.strip().upper() for c in countries.split(",") if c.strip())


@shipment.handles(ScheduleShipment)
async def schedule(tx: LocalTransaction, cmd: ScheduleShipment) -> Reply:
    country = cmd.address.country.upper()
    if country in unserved(tx.settings.shipment_unserved_countries):
        return ShipmentRejected(order_id=cmd.order_id, reason=f"we do not ship to {country}")
    shipment_id = str(uuid.uuid4())
    if await tx.sql.fetchval(_SCHEDULE, cmd.order_id, shipment_id, country) is None:
        return ShipmentRejected(order_id=cmd.order_id, reason="order already has a shipment record")
    return ShipmentScheduled(order_id=cmd.order_id, shipment_id=shipment_id)


@shipment.handles(CancelShipment)
async def cancel(tx: LocalTransaction, cmd: CancelShipment) -> Reply:
    await tx.session.execute(
        insert(shipment_table)
        .values(order_id=cmd.order_id, shipment_id="none", status="cancelled")
        .on_conflict_do_nothing(),
    )
    await tx.session.execute(
        update(shipment_table).where(shipment_table.c.order_id == cmd.order_id).values(status="cancelled"),
    )
    return ShipmentCancelled(order_id=cmd.order_id)
