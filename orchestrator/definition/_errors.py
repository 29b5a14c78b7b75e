"""The definition package's one exception root."""

from __future__ import annotations


class DefinitionError(Exception):
    """Root of every error raised by ``orchestrator.definition``."""


class InvalidSagaDefinition(DefinitionError):  # noqa: N818 - the name users catch, as in the design
    """A saga definition breaks a rule; the message lists each problem and how to fix it."""

    def __init__(self, saga: str, problems: list[str]) -> None:
        self.saga = saga
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"saga definition {saga!r} is invalid:\n{lines}")


class UnexpectedReply(DefinitionError):  # noqa: N818
    """A reply answers the pending command but is not one of the step's declared reply types."""
