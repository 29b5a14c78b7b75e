"""JSON Schema export, so that clients in any language can produce valid messages."""

from __future__ import annotations

from typing import Any

from contracts._envelope import Envelope
from contracts._registry import REGISTRY


def json_schemas() -> dict[str, Any]:
    """One document: every message's schema keyed by type, the envelope, and the header names."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Sagaline contracts",
        "messages": {
            model.type_name(): {"kind": model.kind, "schema": model.model_json_schema()} for model in REGISTRY.models()
        },
        "envelope": Envelope.model_json_schema(),
        "headers": {name: f"sagaline-{name.replace('_', '-')}" for name in Envelope.model_fields},
    }
