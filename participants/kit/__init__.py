"""A small runtime for saga participants."""

from participants.kit._participant import BatchTransaction, CommandProcessor, LocalTransaction, Participant
from participants.kit._sql import Row, Sql

__all__ = ["BatchTransaction", "CommandProcessor", "LocalTransaction", "Participant", "Row", "Sql"]
