"""``sagaline.write_conflict()``: how a batch written without row locks fails when what it assumed is not so.

An orchestrator that wrote a saga's row last keeps the state it wrote; a batch of replies to such sagas is
computed from the kept states and written in one statement, without locking the rows first. The statement
checks its assumptions (every saga row still at the version it was computed from, every message claimed for
the first time, every new saga inserted) and calls this function when one fails: the error (SQLSTATE
``SL409``) undoes the whole statement, and the orchestrator handles the batch again under row locks.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "sagaline"


def upgrade() -> None:
    op.execute(
        f"CREATE FUNCTION {SCHEMA}.write_conflict(detail text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$ "
        "BEGIN RAISE EXCEPTION 'a batch written without row locks found its assumptions out of date: %', detail "
        "USING ERRCODE = 'SL409'; END $$",
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SCHEMA}.write_conflict(text)")
