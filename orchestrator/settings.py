"""Configuration from the environment (prefix ``SAGALINE_``), one keyword-only settings object."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import Topics


class Settings(BaseSettings):
    """Every knob Sagaline reads. Each field is the environment variable ``SAGALINE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SAGALINE_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="Postgres URL (postgresql:// or postgresql+asyncpg://).",
    )
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Comma-separated host:port list.")
    topic_prefix: str = Field(default="", description="Prefix for every topic name, e.g. 'acme.'.")
    topic_partitions: int = Field(default=8, ge=1, description="Partitions of topics Sagaline creates.")
    partition_rotation_s: float = Field(
        default=0,
        ge=0,
        description=(
            "0: a record goes to the partition of its key's hash (Kafka's choice). Above 0: every producer sends "
            "to one partition of a topic for this many seconds, then the next, by the wall clock (1 for the "
            "embedded broker, whose cost per fetch grows with the batches held in the partition fetched)."
        ),
    )
    consumer_group_prefix: str = Field(default="sagaline", description="Consumer groups are <prefix>-<service>.")
    fetch_max_wait_ms: int = Field(
        default=100, ge=0, description="Set 10 for the embedded broker: it never wakes a waiting fetch."
    )
    fetch_idle_max_wait_ms: int = Field(
        default=0,
        ge=0,
        description=(
            "Fetch wait of a consumer that has had no records for fetch_idle_after_ms (0: always "
            "fetch_max_wait_ms); its next records bring it back. 100 for the embedded broker: an idle stack "
            "polls a tenth as often, and the first record after a quiet spell waits up to this long."
        ),
    )
    fetch_idle_after_ms: int = Field(
        default=2_000, ge=0, description="How long a consumer gets no records before its fetch wait stretches."
    )
    fetch_saturated_wait_ms: int = Field(
        default=0,
        ge=0,
        description=(
            "Fetch wait while this machine's CPUs are saturated (from 85 % busy over a second until below 60 %, or "
            "until the short wait, tried for 2 s each quarter minute, leaves them below 85 %; 0: always "
            "fetch_max_wait_ms): fewer, larger batches. 50 for the embedded broker."
        ),
    )
    session_timeout_ms: int = Field(default=10_000, ge=1000, description="3000 for the embedded broker.")
    heartbeat_interval_ms: int = Field(default=3_000, ge=100, description="1000 for the embedded broker.")
    offset_commit_interval_s: float = Field(
        default=0.2,
        ge=0,
        description="How often consumed offsets are committed; a crash redelivers at most this much.",
    )
    refetch_gaps: bool = Field(
        default=False,
        description="Re-fetch when a partition's offsets jump (on for the embedded broker, which can skip records).",
    )
    rejoin_unassigned: bool = Field(
        default=False,
        description=(
            "Rejoin the consumer group as a new member when partitions stay unassigned (on for the embedded "
            "broker, whose groups keep a member's first assignment; only for one consumer per service)."
        ),
    )
    producer_linger_ms: int = Field(
        default=0,
        ge=0,
        description=(
            "How long a producer waits to put more records in one request. 0: none; our publishers hand over a "
            "transaction's records at once, and what comes while a request is out goes in the next one."
        ),
    )
    producer_batch_bytes: int = Field(
        default=524_288,
        ge=16_384,
        description=(
            "Largest record batch a producer builds per partition; keep it below the broker's message.max.bytes "
            "(1 MB by default)."
        ),
    )
    # 500, Kafka's own max.poll.records: faster than 200 at 1,024 sagas in flight in 5 of 5 interleaved pairs
    # (bench/RESULTS.md step 10), where ~4,000 records a second reach the orchestrator: fewer, larger statements.
    consumer_batch_size: int = Field(default=500, ge=1, description="Records fetched and handled per consumer batch.")
    topic_check_interval_s: float = Field(default=5.0, gt=0, description="How often services re-create missing topics.")
    max_message_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger records are dead-lettered as oversized."
    )
    relay_batch_size: int = Field(default=500, ge=1, description="Outbox rows published per relay round.")
    relay_poll_interval_s: float = Field(default=1.0, gt=0, description="Relay fallback poll when no NOTIFY arrives.")
    relay_grace_s: float = Field(
        default=5.0,
        gt=0,
        description="Age after which the relay publishes rows their writer meant to publish itself (it died, say).",
    )
    sweeper_interval_s: float = Field(default=0.5, gt=0, description="How often the deadline sweeper looks.")
    sweeper_batch_size: int = Field(default=200, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    payment_glitch_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of charges the payment service fails retryably (demo/chaos)."
    )
    payment_glitch_seed: int | None = Field(default=None, description="Seed for the glitch injector.")
    payment_refunds_down: bool = Field(
        default=False, description="Refunds fail retryably: a simulated refund-gateway outage."
    )
    shipment_unserved_countries: str = Field(
        default="AQ,KP", description="Countries shipment refuses (comma-separated)."
    )
    saga_definitions: str = Field(
        default="orchestrator.sagas:REGISTRY",
        description="Where the deployed saga definitions are: 'module:attribute' (a registry or a list).",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token the HTTP admin API requires; the API refuses to start without it."
    )
    admin_host: str = Field(default="127.0.0.1", description="Address the HTTP admin API listens on.")
    admin_port: int = Field(default=8088, ge=1, le=65535, description="Port of the HTTP admin API.")
    metrics_port: int | None = Field(default=None, description="Serve Prometheus metrics on this port when set.")
    log_level: str = Field(default="INFO")

    @model_validator(mode="after")
    def _longer_waits_not_shorter(self) -> Settings:
        for name, wait in (
            ("SAGALINE_FETCH_IDLE_MAX_WAIT_MS", self.fetch_idle_max_wait_ms),
            ("SAGALINE_FETCH_SATURATED_WAIT_MS", self.fetch_saturated_wait_ms),
        ):
            if wait and wait < self.fetch_max_wait_ms:
                raise ValueError(
                    f"{name} ({wait}) is shorter than SAGALINE_FETCH_MAX_WAIT_MS ({self.fetch_max_wait_ms}): "
                    "it only ever lengthens the fetch wait (0 turns it off)"
                )
        return self

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix)

    def group_id(self, service: str) -> str:
        return f"{self.consumer_group_prefix}-{service}"
