"""Definition versioning over the real stack: a saga started on v1 finishes on v1 after v2 is deployed,
while new sagas start on v2 (which has no shipment step)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.launch import Stack, wait_terminal
from tests.integration.helpers import cli_json
from tests.integration.test_failure_semantics import (
    history,
    order,
    restart_with,
    saga_row,
    service_down,
    start_and_wait_at,
)

pytestmark = pytest.mark.integration

DEFINITIONS = "SAGALINE_SAGA_DEFINITIONS"


async def test_running_sagas_finish_on_their_version_while_new_ones_use_the_new(stack: Stack, db: AsyncEngine) -> None:
    restart_with(stack, "orchestrator", **{DEFINITIONS: "tests.support.versioned_sagas:V1_ONLY"})
    old, new = order("v1"), order("v2")
    try:
        with service_down(stack, "payment"):
            await start_and_wait_at(stack, db, old, "charge_payment")
            restart_with(stack, "orchestrator", **{DEFINITIONS: "tests.support.versioned_sagas:V1_AND_V2"})
            await start_and_wait_at(stack, db, new, "charge_payment")
        progress = await wait_terminal(db, [old.order_id, new.order_id], timeout_s=60)
        assert progress.by_status == {"completed": 2}
        assert (await saga_row(db, old.order_id)).definition_version == 1
        assert (await saga_row(db, new.order_id)).definition_version == 2
        old_steps = [e.step for e in await history(db, old.order_id) if e.type == "step_completed"]
        new_steps = [e.step for e in await history(db, new.order_id) if e.type == "step_completed"]
        assert old_steps == [
            "create_order",
            "reserve_inventory",
            "charge_payment",
            "schedule_shipment",
            "approve_order",
        ]
        assert new_steps == ["create_order", "reserve_inventory", "charge_payment", "approve_order"]

        env = {**stack.env, DEFINITIONS: "tests.support.versioned_sagas:V1_AND_V2"}
        on_v1 = cli_json(env, "saga", "list", "--version", "1", "--json")
        assert old.order_id in {r["id"] for r in on_v1}
        assert new.order_id not in {r["id"] for r in on_v1}
        for saga_id in (old.order_id, new.order_id):
            assert cli_json(env, "saga", "verify", saga_id, "--json")["ok"] is True
        v1_diagram = cli_json(env, "saga", "show", old.order_id, "--json")["saga"]["definition_version"]
        assert v1_diagram == 1
    finally:
        restart_with(stack, "orchestrator")
