"""Every participant service by name."""

from __future__ import annotations

from participants import inventory, order, payment, shipment
from participants.kit import Participant

PARTICIPANTS: dict[str, Participant] = {
    p.name: p for p in (order.participant, inventory.participant, payment.participant, shipment.participant)
}
