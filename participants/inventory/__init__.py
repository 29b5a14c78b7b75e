"""The inventory participant service."""

from participants.inventory._service import inventory as participant
from participants.inventory._service import metadata

__all__ = ["metadata", "participant"]
