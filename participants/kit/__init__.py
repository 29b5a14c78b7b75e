"""A small runtime for saga participants."""

from participants.kit._participant import CommandProcessor, LocalTransaction, Participant

__all__ = ["CommandProcessor", "LocalTransaction", "Participant"]
