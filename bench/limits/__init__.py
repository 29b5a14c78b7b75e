"""The physical limits of this machine, for context: Postgres single-row commits/s and Kafka messages/s with
aiokafka, against the same Postgres and broker the saga harness uses. ``python -m bench.limits [--json]``."""
