"""The envelope: routing and identity metadata carried in Kafka record headers, not in the body."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

HEADER_PREFIX = "sagaline-"

_HEADER_FIELDS = (
    "message_id",
    "type",
    "saga_id",
    "saga_type",
    "step",
    "causation_id",
    "correlation_id",
    "reply_to",
    "attempt",
)


def header_name(field: str) -> str:
    """``message_id`` → ``sagaline-message-id``."""
    return HEADER_PREFIX + field.replace("_", "-")


_HEADER_OF_FIELD = {field: header_name(field) for field in _HEADER_FIELDS}  # built once: every message needs them
_FIELD_OF_HEADER = {header: field for field, header in _HEADER_OF_FIELD.items()}


class EnvelopeError(ValueError):
    """The record's headers do not form a valid envelope."""


class Envelope(BaseModel):
    """Identity and routing of one message.

    ``message_id`` is the idempotency key: consumers' inboxes dedupe on it.
    ``causation_id`` is the message this one answers; ``correlation_id`` the saga it belongs to.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    saga_id: str | None = None
    saga_type: str | None = None
    step: str | None = None
    causation_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    attempt: int = Field(default=1, ge=1)

    def to_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for field, header in _HEADER_OF_FIELD.items():
            value = getattr(self, field)
            if value is not None:
                headers[header] = str(value)
        return headers

    @classmethod
    def header_values(cls, headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
        """The envelope's fields found in raw Kafka headers (last one wins)."""
        found: dict[str, str] = {}
        for key, value in headers:
            field = _FIELD_OF_HEADER.get(key)
            if field is not None and value is not None:
                try:
                    found[field] = value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    msg = f"header {key!r} is not UTF-8"
                    raise EnvelopeError(msg) from exc
        return found

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> Envelope:
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            msg = f"invalid envelope: {exc.errors(include_url=False)}"
            raise EnvelopeError(msg) from exc
