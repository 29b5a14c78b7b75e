"""The order participant service."""

from participants.order._service import metadata
from participants.order._service import order as participant

__all__ = ["metadata", "participant"]
