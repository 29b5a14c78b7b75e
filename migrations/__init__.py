"""Alembic revisions for the orchestrator's and the participants' schemas."""
