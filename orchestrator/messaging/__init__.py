"""The shared messaging kernel used by the orchestrator and every participant."""

from orchestrator.messaging._assignment import AssignmentWatch, unassigned
from orchestrator.messaging._codec import (
    TRACE_HEADERS,
    DecodeError,
    Incoming,
    RecordRef,
    body_bytes,
    decode,
    encode_body,
    kafka_headers,
)
from orchestrator.messaging._consumer import (
    BatchProcessor,
    Consumer,
    ConsumerCheck,
    Rejected,
    record_ref,
    subscribe,
    watch_consumer,
)
from orchestrator.messaging._dlq import DLQ_HEADER_PREFIX, DeadLetters, describe_dead_letter, dlq_headers
from orchestrator.messaging._driver import Params, driver_connection, json_text
from orchestrator.messaging._fetch_wait import FetchWait, MachineLoad
from orchestrator.messaging._inline import InlinePublisher
from orchestrator.messaging._kafka import consumer_options, ensure_topics, guard_topics, make_broker, make_producer
from orchestrator.messaging._no_auto_create import forbid_topic_auto_creation
from orchestrator.messaging._reader import read_topic
from orchestrator.messaging._relay import OutboxRelay
from orchestrator.messaging._rewind import rewind_if_past_end
from orchestrator.messaging._scan import TopicScan, scan_topic
from orchestrator.messaging._store import (
    OutboxRecord,
    Publish,
    StoredReply,
    Written,
    claim_answered,
    claim_inbox_many,
    inbox_claim,
    notify_channel,
    outbox_insert,
    release_inbox,
    store_replies,
    stored_replies,
    write_outbox,
)

__all__ = [
    "DLQ_HEADER_PREFIX",
    "TRACE_HEADERS",
    "AssignmentWatch",
    "BatchProcessor",
    "Consumer",
    "ConsumerCheck",
    "DeadLetters",
    "DecodeError",
    "FetchWait",
    "Incoming",
    "InlinePublisher",
    "MachineLoad",
    "OutboxRecord",
    "OutboxRelay",
    "Params",
    "Publish",
    "RecordRef",
    "Rejected",
    "StoredReply",
    "TopicScan",
    "Written",
    "body_bytes",
    "claim_answered",
    "claim_inbox_many",
    "consumer_options",
    "decode",
    "describe_dead_letter",
    "dlq_headers",
    "driver_connection",
    "encode_body",
    "ensure_topics",
    "forbid_topic_auto_creation",
    "guard_topics",
    "inbox_claim",
    "json_text",
    "kafka_headers",
    "make_broker",
    "make_producer",
    "notify_channel",
    "outbox_insert",
    "read_topic",
    "record_ref",
    "release_inbox",
    "rewind_if_past_end",
    "scan_topic",
    "store_replies",
    "stored_replies",
    "subscribe",
    "unassigned",
    "watch_consumer",
    "write_outbox",
]
