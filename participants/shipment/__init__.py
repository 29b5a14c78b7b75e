"""The shipment participant service."""

from participants.shipment._service import metadata
from participants.shipment._service import shipment as participant

__all__ = ["metadata", "participant"]
