"""The payment participant service."""

from participants.payment._service import metadata
from participants.payment._service import payment as participant

__all__ = ["metadata", "participant"]
