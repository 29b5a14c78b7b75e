"""Operating sagas: the verbs behind ``sagaline saga …`` and the HTTP admin API (``orchestrator.admin.api``,
imported on its own: the CLI should not pay for FastAPI)."""

from orchestrator.admin._diagram import DiagramFormat, RendererMissingError, path_of, svg_renderer, to_html, to_svg
from orchestrator.admin._queries import BadQueryError, Page, SagaFilter, decode_cursor, encode_cursor, parse_duration
from orchestrator.admin._service import AdminService, OperationResult, VerifyReport
from orchestrator.admin._verify import Verification, verify
from orchestrator.admin._why import Diagnosis, explain, last_error

__all__ = [
    "AdminService",
    "BadQueryError",
    "Diagnosis",
    "DiagramFormat",
    "OperationResult",
    "Page",
    "RendererMissingError",
    "SagaFilter",
    "Verification",
    "VerifyReport",
    "decode_cursor",
    "encode_cursor",
    "explain",
    "last_error",
    "parse_duration",
    "path_of",
    "svg_renderer",
    "to_html",
    "to_svg",
    "verify",
]
