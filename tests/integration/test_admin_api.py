"""The HTTP admin API as a real server (``sagaline admin serve``) over the real stack: the bearer token,
input validation, refusals, and the same verbs as the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.launch import Stack, send_orders, wait_terminal
from tests.integration.helpers import eventually
from tests.integration.test_failure_semantics import history, order, saga_row

pytestmark = pytest.mark.integration

TOKEN = "test-admin-token-5f0c"  # a test secret, checked never to appear in a response


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def api_url(stack: Stack) -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "admin", "serve", "--port", str(port)],
        env={**os.environ, **stack.env, "SAGALINE_ADMIN_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, f"admin API exited: {server.stderr.read() if server.stderr else ''}"
            time.sleep(0.1)  # polling another process's readiness
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {TOKEN}"}) as authed:
        yield authed


@pytest.fixture(scope="module")
async def completed_saga(stack: Stack, db: AsyncEngine) -> str:
    placed = order("api-done")
    await send_orders(stack.settings, [placed])
    assert (await wait_terminal(db, [placed.order_id], timeout_s=90)).by_status == {"completed": 1}
    return placed.order_id


def test_the_admin_api_refuses_to_start_without_a_token(stack: Stack) -> None:
    env = {k: v for k, v in {**os.environ, **stack.env}.items() if k != "SAGALINE_ADMIN_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "admin", "serve", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SAGALINE_ADMIN_TOKEN" in result.stderr


async def test_requests_without_the_token_are_refused(api_url: str, completed_saga: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as anonymous:
        for method, path in [
            ("GET", "/sagas"),
            ("GET", f"/sagas/{completed_saga}"),
            ("POST", f"/sagas/{completed_saga}/cancel"),
            ("GET", "/openapi.json"),
        ]:
            bare = await anonymous.request(method, path)
            assert bare.status_code == 401, path
            assert bare.headers["www-authenticate"] == "Bearer"
            wrong = await anonymous.request(method, path, headers={"Authorization": "Bearer not-the-token"})
            assert wrong.status_code == 401, path
        assert (await anonymous.get("/healthz")).json() == {"ok": True}


async def test_list_show_history_why_verify(client: httpx.AsyncClient, completed_saga: str) -> None:
    page = (await client.get("/sagas", params={"status": "completed", "limit": 1000})).json()
    assert completed_saga in {s["id"] for s in page["sagas"]}
    assert page["next_cursor"] is None
    first = (await client.get("/sagas", params={"limit": 1})).json()
    assert len(first["sagas"]) == 1
    if first["next_cursor"]:
        second = (await client.get("/sagas", params={"limit": 1, "cursor": first["next_cursor"]})).json()
        assert second["sagas"][0]["id"] != first["sagas"][0]["id"]
    detail = (await client.get(f"/sagas/{completed_saga}")).json()
    assert detail["saga"]["status"] == "completed"
    events = (await client.get(f"/sagas/{completed_saga}/history")).json()
    assert events == detail["history"]
    assert events[-1]["type"] == "completed"
    then = (await client.get(f"/sagas/{completed_saga}", params={"as_of": events[0]["at"]})).json()
    assert then["state"]["status"] == "running"
    why = (await client.get(f"/sagas/{completed_saga}/why")).json()
    assert (why["moving"], why["summary"][:9]) == (False, "completed")
    assert (await client.get(f"/sagas/{completed_saga}/verify")).json()["matches"] is True
    report = (await client.post("/verify")).json()
    assert report["ok"] is True
    assert report["checked"] >= 1
    definitions = (await client.get("/definitions")).json()
    assert definitions[0]["name"] == "order_fulfillment"
    diagram = await client.get("/definitions/order_fulfillment/diagram", params={"saga": completed_saga})
    assert diagram.text.startswith("stateDiagram-v2")
    assert "class Completed current" in diagram.text
    spec = (await client.get("/openapi.json")).json()
    assert {"/sagas", "/sagas/{saga_id}", "/sagas/{saga_id}/{verb}", "/sagas/{saga_id}/why"} <= set(spec["paths"])


async def test_inputs_are_validated(client: httpx.AsyncClient, completed_saga: str) -> None:
    assert (await client.get("/sagas", params={"limit": 0})).status_code == 422
    assert (await client.get("/sagas", params={"status": "sleeping"})).status_code == 422
    assert (await client.get("/sagas", params={"cursor": "garbage"})).status_code == 400
    assert (await client.get("/sagas", params={"older_than": "soon"})).status_code == 400
    assert (await client.get("/sagas/bad id;drop")).status_code == 422
    assert (await client.get("/sagas/no-such-saga")).status_code == 404
    assert (await client.post(f"/sagas/{completed_saga}/explode")).status_code == 422
    too_long = await client.post(f"/sagas/{completed_saga}/cancel", json={"reason": "x" * 501})
    assert too_long.status_code == 422
    extra = await client.post(f"/sagas/{completed_saga}/cancel", json={"reason": "r", "force": True})
    assert extra.status_code == 422


async def test_refusal_changes_nothing_and_compensate_works(
    client: httpx.AsyncClient, db: AsyncEngine, completed_saga: str
) -> None:
    before = (await history(db, completed_saga), await saga_row(db, completed_saga))
    refused = await client.post(f"/sagas/{completed_saga}/cancel", json={"reason": "too late", "actor": "bob"})
    assert refused.status_code == 409
    assert refused.json()["status"] == "completed"
    assert "only a running saga can be cancelled" in refused.json()["detail"]
    assert (await history(db, completed_saga), await saga_row(db, completed_saga)) == before

    done = await client.post(f"/sagas/{completed_saga}/compensate", json={"reason": "chargeback", "actor": "bob"})
    assert done.status_code == 200
    assert done.json() == {
        "saga_id": completed_saga,
        "verb": "compensate",
        "status": "compensating",
        "step": "schedule_shipment",
        "changed": True,
        "actor": "api:bob",
        "reason": "chargeback",
    }

    async def compensated() -> None:
        assert (await client.get(f"/sagas/{completed_saga}")).json()["saga"]["status"] == "compensated"

    await eventually(compensated, timeout_s=60)
    events = (await client.get(f"/sagas/{completed_saga}/history")).json()
    request = next(e for e in events if e["type"] == "compensate_requested")
    assert (request["payload"]["actor"], request["payload"]["reason"]) == ("api:bob", "chargeback")


async def test_responses_never_carry_secrets(client: httpx.AsyncClient, stack: Stack, completed_saga: str) -> None:
    assert stack.database_url is not None
    bodies = [
        (await client.get(path)).text
        for path in ["/sagas", f"/sagas/{completed_saga}", f"/sagas/{completed_saga}/why", "/openapi.json"]
    ]
    bodies.append((await client.get("/sagas", params={"cursor": "garbage"})).text)
    for body in bodies:
        assert TOKEN not in body
        assert stack.database_url not in body
        assert "postgresql://" not in body
