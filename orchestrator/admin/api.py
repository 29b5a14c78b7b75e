"""The HTTP admin API: the CLI's verbs as JSON over HTTP, behind a bearer token.

Every route but ``/healthz`` requires ``Authorization: Bearer <SAGALINE_ADMIN_TOKEN>``, the OpenAPI document
(``/openapi.json``) included. Errors are JSON ``{"detail": …}``; unexpected ones are logged here and answered
with an id only, so that no connection string or internal detail reaches the client."""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.admin._diagram import DiagramFormat, RendererMissingError, to_html, to_svg
from orchestrator.admin._models import (
    AsOfView,
    DefinitionView,
    DiagnosisView,
    HistoryEvent,
    OperationView,
    OperatorRequest,
    Problem,
    SagaDetail,
    SagaPage,
    SagaView,
    VerificationView,
    VerifyReportView,
)
from orchestrator.admin._queries import BadQueryError, SagaFilter
from orchestrator.admin._service import AdminService
from orchestrator.definition import DefinitionError, OperatorVerb, SagaStatus
from orchestrator.runtime import OperationRefusedError, SagaNotFoundError

log = logging.getLogger(__name__)

SagaId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[\w.:@/+-]+$", description="The saga id.")]
_bearer = HTTPBearer(auto_error=False, description="SAGALINE_ADMIN_TOKEN")
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong bearer token"},
    404: {"model": Problem, "description": "no such saga or definition"},
}


def _view(row: dict[str, Any]) -> SagaView:
    return SagaView.model_validate({k: row.get(k) for k in SagaView.model_fields})


def _history(events: list[dict[str, Any]]) -> list[HistoryEvent]:
    return [HistoryEvent.model_validate({k: e[k] for k in HistoryEvent.model_fields}) for e in events]


def create_app(token: str, make_service: Callable[[], AdminService]) -> FastAPI:
    """``make_service`` is called once, at start-up, inside the server's event loop."""
    if not token:
        raise ValueError("the admin API needs a token: set SAGALINE_ADMIN_TOKEN")
    expected = token.encode()

    def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        given = (credentials.credentials if credentials else "").encode()
        if credentials is None or not hmac.compare_digest(given, expected):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = make_service()
        try:
            yield
        finally:
            await app.state.service.close()

    app = FastAPI(
        title="Sagaline admin API",
        version="1",
        description="List, inspect and operate sagas. Every route but /healthz needs `Authorization: Bearer …`.",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    router = APIRouter(dependencies=[Depends(authorised)], responses=_ERRORS)
    _routes(router)

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    app.include_router(router)
    _errors(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


def _service(request: Request) -> AdminService:
    service: AdminService = request.app.state.service
    return service


Service = Annotated[AdminService, Depends(_service)]


def _routes(router: APIRouter) -> None:  # noqa: C901 - one nested function per route
    @router.get("/sagas", tags=["sagas"])
    async def list_sagas(  # noqa: PLR0913, PLR0917 - one parameter per filter
        service: Service,
        status: SagaStatus | None = None,
        saga_type: Annotated[str | None, Query(alias="type", max_length=200)] = None,
        version: Annotated[int | None, Query(ge=1)] = None,
        step: Annotated[str | None, Query(max_length=200)] = None,
        older_than: Annotated[str | None, Query(max_length=20, description="e.g. 90s, 10m, 2h, 1d")] = None,
        stuck: bool = False,
        stuck_for: Annotated[str, Query(max_length=20)] = "60s",
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> SagaPage:
        """Sagas, newest change first. ``stuck``: failed, or live with no change for ``stuck_for``."""
        where = SagaFilter.parse(
            status=status,
            saga_type=saga_type,
            definition_version=version,
            step=step,
            older_than=older_than,
            stuck=stuck,
            stuck_for=stuck_for,
        )
        page = await service.list_sagas(where, limit=limit, cursor=cursor)
        return SagaPage(sagas=[_view(r) for r in page.rows], next_cursor=page.next_cursor)

    @router.get("/sagas/{saga_id}", tags=["sagas"], response_model=SagaDetail | AsOfView)
    async def show(service: Service, saga_id: SagaId, as_of: datetime | None = None) -> SagaDetail | AsOfView:
        """A saga's state and history; with ``as_of`` (ISO 8601 with a zone), its state as it was then."""
        if as_of is not None:
            if as_of.tzinfo is None:
                raise BadQueryError("as_of needs a time zone, e.g. 2026-11-24T10:15:00Z")
            return AsOfView.model_validate(await service.as_of(saga_id, as_of))
        shown = await service.show(saga_id)
        return SagaDetail(saga=_view(shown["saga"]), history=_history(shown["history"]))

    @router.get("/sagas/{saga_id}/history", tags=["sagas"])
    async def history(service: Service, saga_id: SagaId) -> list[HistoryEvent]:
        """The append-only history, oldest first."""
        return _history(await service.history(saga_id))

    @router.get("/sagas/{saga_id}/why", tags=["sagas"])
    async def why(service: Service, saga_id: SagaId, dlq: bool = True) -> DiagnosisView:
        """Why the saga is not moving, in plain language."""
        return DiagnosisView.model_validate(asdict(await service.why(saga_id, dead_letters=dlq)))

    @router.post("/sagas/{saga_id}/{verb}", tags=["operate"], responses={409: {"model": Problem}})
    async def operate(
        service: Service, saga_id: SagaId, verb: OperatorVerb, body: OperatorRequest | None = None
    ) -> OperationView:
        """retry, resume, cancel or compensate; recorded in the history with who and why. 409 when the verb
        does not apply to the saga's status (nothing is changed)."""
        request = body or OperatorRequest()
        actor = f"api:{request.actor or 'anonymous'}"
        reason = request.reason or f"{verb} via admin API"
        return OperationView.model_validate(asdict(await service.operate(verb, saga_id, reason=reason, actor=actor)))

    @router.get("/sagas/{saga_id}/verify", tags=["history"])
    async def verify(service: Service, saga_id: SagaId) -> VerificationView:
        """Rebuild from history alone and compare with the stored state."""
        return VerificationView.model_validate(asdict(await service.verify(saga_id)))

    @router.post("/verify", tags=["history"])
    async def verify_all(service: Service) -> VerifyReportView:
        """Verify every saga."""
        report = await service.verify_all()
        divergent = [VerificationView.model_validate(asdict(d)) for d in report.divergent]
        return VerifyReportView(checked=report.checked, ok=report.ok, divergent=divergent)

    @router.get("/definitions", tags=["definitions"])
    async def definitions(service: Service) -> list[DefinitionView]:
        registry = service.registry
        return [
            DefinitionView(
                name=name,
                versions=registry.versions(name),
                latest=registry.latest(name).version,
                steps=[s.name for s in registry.latest(name).steps],
            )
            for name in registry.names()
        ]

    @router.get("/definitions/{saga_type}/diagram", tags=["definitions"], response_class=PlainTextResponse)
    async def diagram(
        service: Service,
        saga_type: Annotated[str, Path(max_length=200)],
        saga: Annotated[str | None, Query(max_length=200)] = None,
        version: Annotated[int | None, Query(ge=1)] = None,
        fmt: Annotated[DiagramFormat, Query(alias="format")] = DiagramFormat.MERMAID,
    ) -> Response:
        """Mermaid text; ``format=html`` a page that draws it; ``format=svg`` where a renderer is installed."""
        text = await service.diagram(saga_type, version=version, saga_id=saga)
        if fmt is DiagramFormat.HTML:
            return HTMLResponse(to_html(text, saga_type))
        if fmt is DiagramFormat.SVG:
            return Response(to_svg(text), media_type="image/svg+xml")
        return PlainTextResponse(text, media_type="text/vnd.mermaid")


def _errors(app: FastAPI) -> None:
    @app.exception_handler(SagaNotFoundError)
    async def not_found(_request: Request, exc: SagaNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": f"no saga {exc.args[0]!r}"}, status_code=404)

    @app.exception_handler(OperationRefusedError)
    async def refused(_request: Request, exc: OperationRefusedError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "status": exc.status.value}, status_code=409)

    @app.exception_handler(DefinitionError)
    async def unknown_definition(_request: Request, exc: DefinitionError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(BadQueryError)
    async def bad_query(_request: Request, exc: BadQueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RendererMissingError)
    async def no_renderer(_request: Request, exc: RendererMissingError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=501)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("admin API error %s", error_id, exc_info=exc)
        return JSONResponse({"detail": f"internal error {error_id}; the admin API's log has the cause"}, 500)
