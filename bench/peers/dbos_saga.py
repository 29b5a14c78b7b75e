"""The order saga on DBOS (local Postgres): ``dbos_saga.py --sagas N --concurrency C --failure-share F [--json]``.

One durable async workflow per saga; every step and every compensation is a DBOS datasource transaction (the
participant's change and DBOS's record of the step's result commit together, in READ COMMITTED like Sagaline's
participants). A refusal makes the workflow run the compensations of the steps done so far, in reverse.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import peer_common as common
from dbos import DBOS, AsyncSQLAlchemyDatasource, DBOSConfig

PEER = "dbos"


async def _build(database_url: str) -> common.RunOne:
    sqlalchemy_url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    datasource = await AsyncSQLAlchemyDatasource.create(
        sqlalchemy_url, engine_kwargs={"pool_size": 10, "max_overflow": 10}
    )

    @datasource.transaction(name="participant_tx", isolation_level="READ COMMITTED")
    async def participant_tx(action: str, order: dict[str, Any]) -> str:
        sql, params = common.step_sql(action, order)
        connection = await datasource.sql_session().connection()
        return str((await connection.exec_driver_sql(sql, params)).scalar_one())

    @DBOS.workflow(name="order_saga")
    async def order_saga(order: dict[str, Any]) -> str:
        done: list[str] = []
        for step in common.STEPS:
            reply = await participant_tx(step, order)
            if reply != "ok":
                for undo in reversed(done):
                    common.check_reply(
                        common.COMPENSATION[undo], await participant_tx(common.COMPENSATION[undo], order)
                    )
                return common.COMPENSATED
            done += [step] if step in common.COMPENSATION else []
        return common.COMPLETED

    async def run_one(order: common.Order) -> str:
        handle = await DBOS.start_workflow_async(order_saga, order.as_dict())
        return await handle.get_result()

    return run_one


async def _main(args: common.Args) -> dict[str, Any]:
    with common.fresh_database(PEER) as database_url:
        config: DBOSConfig = {"name": "peers-order-saga", "system_database_url": database_url, "log_level": "WARNING"}
        DBOS(config=config)
        try:
            run_one = await _build(database_url)
            DBOS.launch()
            return await common.benchmark(
                PEER, args, database_url, run_one, datasource_pool=20, system_pool=20, isolation="READ COMMITTED"
            )
        finally:
            DBOS.destroy(destroy_registry=True)


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("dbos").setLevel(logging.WARNING)
    report = asyncio.run(_main(common.parse_args(PEER, argv)))
    return 0 if report["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
