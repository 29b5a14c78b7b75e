"""Base classes for every message Sagaline sends: frozen, strict, typed by a literal ``type``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


class Message(BaseModel):
    """A message body. Subclasses declare ``type: Literal["Name"] = "Name"``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    kind: ClassVar[str] = "message"

    @classmethod
    def type_name(cls) -> str:
        """The literal value of the ``type`` field: the name the registry knows it by."""
        name = _TYPE_NAMES.get(cls)
        if name is None:  # looked up once per class: pydantic's model_fields is slow enough to show per message
            default = cls.model_fields["type"].default
            if not isinstance(default, str):  # pragma: no cover - guarded by the registry
                msg = f"{cls.__name__} must declare a literal `type` with a default"
                raise TypeError(msg)
            name = _TYPE_NAMES[cls] = default
        return name


_TYPE_NAMES: dict[type[Message], str] = {}


class Command(Message):
    """Asks one participant to do one local transaction."""

    kind: ClassVar[str] = "command"


class StartCommand(Message):
    """Asks the orchestrator to start a saga; the body is the saga's input."""

    kind: ClassVar[str] = "start"


class Reply(Message):
    """A participant's answer to a command."""

    kind: ClassVar[str] = "reply"


class SuccessReply(Reply):
    """The command's local transaction committed."""


class FailureReply(Reply):
    """The command was refused or could not be done.

    ``retryable`` says whether sending the same command again may succeed
    (a gateway glitch) or not (over the credit limit).
    """

    reason: str
    retryable: bool = False
    error_type: str = "business"


class Event(Message):
    """A saga lifecycle event published on ``saga.events``."""

    kind: ClassVar[str] = "event"
