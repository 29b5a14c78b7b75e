"""A small runtime for saga participants."""

from participants.kit._participant import CommandProcessor, LocalTransaction, Participant
from participants.kit._sql import Row, Sql

__all__ = ["CommandProcessor", "LocalTransaction", "Participant", "Row", "Sql"]
