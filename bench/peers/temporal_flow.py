"""The order saga as a Temporal workflow (its own module: Temporal's sandbox re-imports workflow modules)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import peer_common as common

ACTIVITY = "participant_tx"
REFUSED = "StepRefused"
STEP_RETRY = RetryPolicy(maximum_attempts=6, non_retryable_error_types=[REFUSED])
UNDO_RETRY = RetryPolicy(maximum_attempts=6)


@workflow.defn(name="OrderSaga")
class OrderSaga:
    """Steps in order; on a refusal, the compensations of the steps done so far in reverse."""

    @workflow.run
    async def run(self, order: dict[str, Any]) -> str:
        done: list[str] = []
        for step in common.STEPS:
            try:
                await self._call(step, order, STEP_RETRY)
            except ActivityError:
                for undo in reversed(done):
                    await self._call(common.COMPENSATION[undo], order, UNDO_RETRY)
                return common.COMPENSATED
            done += [step] if step in common.COMPENSATION else []
        return common.COMPLETED

    @staticmethod
    async def _call(action: str, order: dict[str, Any], retry: RetryPolicy) -> None:
        await workflow.execute_activity(
            ACTIVITY, args=[action, order], start_to_close_timeout=timedelta(seconds=30), retry_policy=retry
        )
