"""Database URLs and engines: one place that knows the driver names."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import ARRAY, Text, bindparam
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def sqlalchemy_url(url: str) -> str:
    """Any ``postgres://``/``postgresql://`` URL → the asyncpg dialect SQLAlchemy needs."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """The plain ``postgresql://`` form asyncpg's own ``connect`` takes (used for LISTEN)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def json_text(value: Any) -> str:
    """JSON for ``jsonb`` parameters (orjson: several times faster than ``json.dumps`` on the hot path)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def text_ids() -> Any:
    """The ``ids`` parameter as a ``text[]``, for ``column == any_(text_ids())``."""
    return bindparam("ids", type_=ARRAY(Text))


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Every statement is planned for its parameters (``force_custom_plan``): Postgres would otherwise switch a
    prepared statement to a generic plan after five executions, made while the tables were small (a seq scan
    of the inbox, say), and keep it as they grow: throughput fell by a third within three benchmark runs."""
    # No pre-ping: it cost a round trip per transaction. A connection that died since its last use fails
    # its first statement instead, which is a transient fault the caller retries on a fresh connection.
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=300,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
    )
