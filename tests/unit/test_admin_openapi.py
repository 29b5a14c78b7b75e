"""The admin API's committed OpenAPI document is the one the code serves, and every route needs the token."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.admin import AdminService
from orchestrator.admin.api import create_app
from orchestrator.sagas import REGISTRY
from orchestrator.settings import Settings

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "admin-api.openapi.json"


def test_the_committed_document_is_current() -> None:
    served = create_app("t", lambda: AdminService(Settings(), REGISTRY)).openapi()
    committed = json.loads(DOCUMENT.read_text())
    assert served == committed, "run: sagaline admin openapi --output docs/admin-api.openapi.json"


def test_every_saga_route_declares_the_bearer_token() -> None:
    document = json.loads(DOCUMENT.read_text())
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "description": "SAGALINE_ADMIN_TOKEN",
        "scheme": "bearer",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/healthz":
                assert "security" not in operation
            else:
                assert operation["security"] == [{"HTTPBearer": []}], f"{method} {path}"
                assert "401" in operation["responses"], f"{method} {path}"
