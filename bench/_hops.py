"""Where a saga's time goes: each leg of its path, read back from the history and the participants' inboxes.

A step is two legs. The *command* leg runs from the orchestrator's transition that sent the command (its
``at``) to the participant's transaction that took it (``inbox.received_at``, the transaction's start): the
orchestrator's commit and publish, the broker, the participant's fetch and its wait behind the batch before.
The *reply* leg runs from there to the orchestrator's transition that took the reply: the participant's
transaction and publish, the broker, the orchestrator's fetch and its wait behind the batch before. The
*start* leg runs from when the harness sent (or, open loop, was due to send) the start to its first
transition. A saga's latency is its start leg plus its steps' legs. All clocks are this machine's.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench import _readonly
from bench._summary import marks
from orchestrator.sagas import ORDER_FULFILLMENT
from participants.registry import PARTICIPANTS

HOP_MARKS = {"p50": 0.50, "p99": 0.99}
_RECEIVED = " UNION ALL ".join(f"SELECT message_id, received_at FROM {p.schema}.inbox" for p in PARTICIPANTS.values())
_LEGS = f"""
WITH transitions AS (
    SELECT saga_id, first_seq, from_status, at, entries,
           lag(at) OVER (PARTITION BY saga_id ORDER BY first_seq) AS previous_at
    FROM sagaline.saga_transition WHERE saga_id = ANY($1::text[])
), replies AS (
    SELECT t.from_status, t.at, t.previous_at, e->>'step' AS step, e->'payload'->>'causation_id' AS command_id
    FROM transitions t, jsonb_array_elements(t.entries) e
    WHERE e->>'type' = 'reply_received'
)
SELECT r.step, r.from_status = 'compensating' AS undo,
       extract(epoch FROM c.received_at - r.previous_at) * 1000 AS command_ms,
       extract(epoch FROM r.at - c.received_at) * 1000 AS reply_ms
FROM replies r JOIN ({_RECEIVED}) c ON c.message_id = r.command_id
"""
_FIRST = (
    "SELECT saga_id, extract(epoch FROM at)::float8 AS at FROM sagaline.saga_transition "
    "WHERE saga_id = ANY($1::text[]) AND first_seq = 1"
)


def _marks(values: list[float]) -> dict[str, float]:
    return marks(values, HOP_MARKS) | {"count": len(values)}


def _path_order() -> list[str]:
    """The order a compensated saga takes its steps: forward in the definition's order, then undone in reverse."""
    forward = [step.name for step in ORDER_FULFILLMENT.steps]
    return forward + [f"undo {name}" for name in reversed(forward)]


async def legs(conn: Any, sent_at: dict[str, float]) -> dict[str, Any]:
    """p50 / p99 (ms) of every leg of these sagas, by step (``start``; ``<step>`` forward, ``undo <step>``
    compensating), each as ``{"command": …, "reply": …}``, in the order the sagas take them."""
    saga_ids = list(sent_at)
    first = await _readonly.fetch(conn, _FIRST, saga_ids)
    start = [(row["at"] - sent_at[row["saga_id"]]) * 1000 for row in first]
    by_step: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"command": [], "reply": []})
    for row in await _readonly.fetch(conn, _LEGS, saga_ids):
        leg = by_step[f"undo {row['step']}" if row["undo"] else row["step"]]
        leg["command"].append(float(row["command_ms"]))
        leg["reply"].append(float(row["reply_ms"]))
    figures: dict[str, Any] = {"start": _marks(start)}
    path = _path_order()
    for step in sorted(by_step, key=lambda s: path.index(s) if s in path else len(path)):
        figures[step] = {leg: _marks(values) for leg, values in by_step[step].items()}
    return figures
