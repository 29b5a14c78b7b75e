# ruff: noqa: S608 - the schema name is our own constant; nothing here takes a value
"""History stored one row per transition: ``saga_transition``; ``saga_event`` becomes a view of its entries.

A transition wrote two to four history rows (its input, then what followed: a command sent, a step completed,
the saga ended), 16.7 rows per order saga; each row was a tuple, a primary-key entry and a WAL record of its
own. A transition is now one row whose ``entries`` hold them in order, numbered from ``first_seq`` to
``last_seq``. ``sagaline.saga_event`` is a view with the columns and the numbering the table had, so every
reader (``saga history``, the admin API, "state as of", rebuilds, audits) reads the same events as before.

Existing history moves over one row per event (the same seq numbers and contents). The new table keeps the
old one's guarantees: append-only at the database (a trigger refuses UPDATE and DELETE), and two writers
appending after the same seq collide on the primary key.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "sagaline"

_VIEW = (
    f"CREATE VIEW {SCHEMA}.saga_event AS "
    "SELECT t.saga_id, t.first_seq + e.ordinality::int - 1 AS seq, e.entry ->> 'type' AS type, "
    "CASE WHEN e.ordinality = 1 THEN t.from_status END AS from_status, t.to_status, e.entry ->> 'step' AS step, "
    "e.entry -> 'payload' AS payload, t.at "
    f"FROM {SCHEMA}.saga_transition AS t CROSS JOIN LATERAL jsonb_array_elements(t.entries) WITH ORDINALITY "
    "AS e(entry, ordinality)"
)


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {SCHEMA}.saga_transition ("
        "saga_id text NOT NULL, first_seq integer NOT NULL, last_seq integer NOT NULL, from_status text, "
        "to_status text NOT NULL, at timestamptz NOT NULL, entries jsonb NOT NULL, "
        "PRIMARY KEY (saga_id, first_seq), CHECK (last_seq >= first_seq))"
    )
    op.execute(
        f"INSERT INTO {SCHEMA}.saga_transition (saga_id, first_seq, last_seq, from_status, to_status, at, entries) "
        "SELECT saga_id, seq, seq, from_status, to_status, at, "
        "jsonb_build_array(jsonb_build_object('type', type, 'step', step, 'payload', payload)) "
        f"FROM {SCHEMA}.saga_event"
    )
    op.execute(f"DROP TABLE {SCHEMA}.saga_event")
    op.execute(
        f"CREATE OR REPLACE FUNCTION {SCHEMA}.saga_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'the saga history is append-only'; END $$",
    )
    op.execute(
        f"CREATE TRIGGER saga_transition_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.saga_transition "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.saga_event_append_only()",
    )
    op.execute(_VIEW)


def downgrade() -> None:
    op.execute(
        f"CREATE TABLE {SCHEMA}.saga_event_rows AS SELECT saga_id, seq, type, from_status, to_status, step, "
        f"coalesce(payload, '{{}}'::jsonb) AS payload, at FROM {SCHEMA}.saga_event"
    )
    op.execute(f"DROP VIEW {SCHEMA}.saga_event")
    op.execute(f"DROP TABLE {SCHEMA}.saga_transition")
    op.execute(f"ALTER TABLE {SCHEMA}.saga_event_rows RENAME TO saga_event")
    for column in ("saga_id", "seq", "type", "to_status", "payload", "at"):
        op.execute(f"ALTER TABLE {SCHEMA}.saga_event ALTER COLUMN {column} SET NOT NULL")
    op.execute(f"ALTER TABLE {SCHEMA}.saga_event ALTER COLUMN payload SET DEFAULT '{{}}'::jsonb")
    op.execute(f"ALTER TABLE {SCHEMA}.saga_event ADD PRIMARY KEY (saga_id, seq)")
    op.execute(
        f"CREATE OR REPLACE FUNCTION {SCHEMA}.saga_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'saga_event is append-only'; END $$",
    )
    op.execute(
        f"CREATE TRIGGER saga_event_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.saga_event "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.saga_event_append_only()",
    )
