"""Build-time validation of saga definitions: every rule fails with a message naming the problem."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

import pytest

from contracts import (
    CancelOrder,
    Command,
    CreateOrder,
    FailureReply,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    OrderCancelled,
    OrderCreated,
    PaymentDeclined,
    PlaceOrder,
    ReleaseInventory,
    ReserveInventory,
    StartCommand,
    SuccessReply,
)
from orchestrator.definition import (
    Compensation,
    DefinitionError,
    Edge,
    InvalidSagaDefinition,
    RetryPolicy,
    SagaContext,
    SagaDefinition,
    StateMachine,
    compile_machine,
    saga,
    to_mermaid,
)
from orchestrator.sagas import ORDER_FULFILLMENT

Ctx = SagaContext[PlaceOrder]


# --- message types the contracts registry does not know ---------------------------------------


class ExportOrder(Command):
    type: Literal["ExportOrder"] = "ExportOrder"
    order_id: str


class OrderExported(SuccessReply):
    type: Literal["OrderExported"] = "OrderExported"


class ExportRefused(FailureReply):
    type: Literal["ExportRefused"] = "ExportRefused"


class ImpostorCreateOrder(Command):
    """Claims the registered type name ``CreateOrder`` but is a different model."""

    type: Literal["CreateOrder"] = "CreateOrder"


class RogueStart(StartCommand):
    type: Literal["RogueStart"] = "RogueStart"


# --- a valid two-step saga, and ways to break it one part at a time --------------------------


def _cancel_order(c: Ctx) -> Command:
    return CancelOrder(order_id=c.input.order_id)


def _create_order(c: Ctx) -> Command:
    return CreateOrder(order_id=c.input.order_id, customer_id=c.input.customer_id, amount_cents=c.input.amount_cents)


def _reserve(c: Ctx) -> Command:
    return ReserveInventory(order_id=c.input.order_id, items=c.input.items)


def _release(c: Ctx) -> Command:
    return ReleaseInventory(order_id=c.input.order_id)


def compensation(**overrides: Any) -> Compensation[PlaceOrder]:
    parts: dict[str, Any] = {"command": CancelOrder, "build": _cancel_order, "replies": (OrderCancelled,)}
    return Compensation(**{**parts, **overrides})


def first_step(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a valid ``create_order`` step."""
    parts: dict[str, Any] = {
        "participant": "order",
        "command": CreateOrder,
        "build": _create_order,
        "replies": (OrderCreated,),
        "compensation": compensation(),
    }
    return {**parts, **overrides}


def second_step(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a valid ``reserve_inventory`` step."""
    parts: dict[str, Any] = {
        "participant": "inventory",
        "command": ReserveInventory,
        "build": _reserve,
        "replies": (InventoryReserved,),
        "failures": (InventoryReservationFailed,),
        "compensation": Compensation(command=ReleaseInventory, build=_release, replies=(InventoryReleased,)),
    }
    return {**parts, **overrides}


def build(
    steps: list[tuple[str, dict[str, Any]]],
    *,
    name: str = "demo_saga",
    version: int = 1,
    time_to_live: timedelta = timedelta(minutes=1),
    start: type[Any] = PlaceOrder,
) -> SagaDefinition[Any]:
    builder = saga(name, start=start, version=version, time_to_live=time_to_live)
    for step_name, kwargs in steps:
        builder.step(step_name, **kwargs)
    return builder.build()


def problems_of(steps: list[tuple[str, dict[str, Any]]], **saga_kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(InvalidSagaDefinition) as caught:
        build(steps, **saga_kwargs)
    error = caught.value
    assert error.saga == saga_kwargs.get("name", "demo_saga")
    for problem in error.problems:  # the message lists every problem
        assert f"  - {problem}" in str(error)
    return error.problems


def assert_one_problem(problems: tuple[str, ...], *fragments: str) -> None:
    matching = [p for p in problems if all(f in p for f in fragments)]
    assert matching, f"no problem mentions {fragments!r} in {problems!r}"


# --- the valid baseline ----------------------------------------------------------------------


def test_the_baseline_two_step_saga_is_valid() -> None:
    definition = build([("create_order", first_step()), ("reserve_inventory", second_step())])
    assert [s.name for s in definition.steps] == ["create_order", "reserve_inventory"]
    assert definition.position("reserve_inventory") == 1
    assert definition.step("create_order").participant == "order"


def test_order_fulfillment_builds_with_a_sound_state_machine() -> None:
    assert [s.name for s in ORDER_FULFILLMENT.steps] == [
        "create_order",
        "reserve_inventory",
        "charge_payment",
        "schedule_shipment",
        "approve_order",
    ]
    machine = compile_machine(ORDER_FULFILLMENT)
    assert machine.problems() == []
    undo_states = {s for s in machine.states if s.startswith("undo_")}
    assert undo_states == {
        "undo_create_order",
        "undo_reserve_inventory",
        "undo_charge_payment",
        "undo_schedule_shipment",
    }
    assert {"Start", "Completed", "Compensated", "Failed"} <= set(machine.states)


def test_order_fulfillment_mermaid_shows_every_step_and_compensation() -> None:
    text = to_mermaid(ORDER_FULFILLMENT)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> create_order: start" in lines
    for step in ORDER_FULFILLMENT.steps:
        assert f"    {step.name}: {step.name} → {step.participant} ({step.command.type_name()})" in lines
        if step.compensation is not None:
            assert f"    undo_{step.name}: undo {step.name} ({step.compensation.command.type_name()})" in lines
            assert f"    undo_{step.name} --> Failed: compensation exhausted" in lines
            assert f"    Failed --> undo_{step.name}: resume" in lines
    assert "undo_approve_order" not in text  # the last step has no compensation
    assert "    approve_order --> Completed: OrderApproved" in lines
    assert "    undo_create_order --> Compensated: OrderCancelled" in lines
    assert "    charge_payment --> undo_reserve_inventory: failed" in lines
    assert "    charge_payment --> undo_charge_payment: timed out / cancelled" in lines


def test_mermaid_shows_a_guard_label_on_the_edges_into_a_guarded_step() -> None:
    definition = build(
        [
            ("create_order", first_step()),
            ("reserve_inventory", second_step(when=lambda c: len(c.input.items) > 1, when_label="several items")),
        ],
    )
    text = to_mermaid(definition)
    assert "    create_order --> reserve_inventory: OrderCreated [several items]" in text
    assert "    create_order --> Completed: OrderCreated" in text  # the guard may skip the last step
    assert compile_machine(definition).problems() == []


# --- saga-level rules ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["OrderSaga", "order-saga", "1order", "_order", "", "order saga", "order\n"])
def test_saga_name_must_be_snake_case(name: str) -> None:
    problems = problems_of([("create_order", first_step())], name=name)
    assert_one_problem(problems, f"saga name {name!r} must be snake_case")


@pytest.mark.parametrize("version", [0, -1])
def test_version_must_be_at_least_one(version: int) -> None:
    problems = problems_of([("create_order", first_step())], version=version)
    assert problems == ("version must be >= 1",)


def test_a_saga_needs_at_least_one_step() -> None:
    problems = problems_of([])
    assert problems == ("a saga needs at least one step; add .step(...) before .build()",)


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5)])
def test_time_to_live_must_be_positive(ttl: timedelta) -> None:
    problems = problems_of([("create_order", first_step())], time_to_live=ttl)
    assert problems == ("time_to_live must be positive",)


def test_start_command_must_be_registered_in_contracts() -> None:
    problems = problems_of([("create_order", first_step())], start=RogueStart)
    assert problems == (
        "start command: message type 'RogueStart' is not in the contracts registry; add it to contracts",
    )


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of([("Create", first_step(replies=()))], name="Bad", version=0)
    assert len(problems) == 4
    assert_one_problem(problems, "saga name 'Bad'")
    assert_one_problem(problems, "version must be >= 1")
    assert_one_problem(problems, "step 'Create': name must be snake_case")
    assert_one_problem(problems, "step 'Create': declare at least one success reply type")


def test_invalid_definition_is_a_definition_error_with_a_readable_message() -> None:
    with pytest.raises(DefinitionError, match=r"saga definition 'demo_saga' is invalid:\n  - version must be >= 1"):
        build([("create_order", first_step())], version=0)


# --- step-level rules ------------------------------------------------------------------------


def test_step_names_must_be_unique() -> None:
    problems = problems_of([("create_order", first_step()), ("create_order", first_step())])
    assert problems == ("step name 'create_order' is used twice; give each step a unique name",)


@pytest.mark.parametrize("name", ["CreateOrder", "create-order", "2nd_step", "create order", "create_order\n"])
def test_step_name_must_be_snake_case(name: str) -> None:
    problems = problems_of([(name, first_step())])
    assert problems == (f"step {name!r}: name must be snake_case (letters, digits, _)",)


@pytest.mark.parametrize("participant", ["Order", "order-service", "order service", ""])
def test_participant_must_be_snake_case(participant: str) -> None:
    problems = problems_of([("create_order", first_step(participant=participant))])
    assert problems == (f"step 'create_order': participant {participant!r} must be snake_case",)


def test_a_step_without_compensation_must_be_the_last_step() -> None:
    problems = problems_of([("create_order", first_step(compensation=None)), ("reserve_inventory", second_step())])
    assert problems == (
        (
            "step 'create_order' has no compensation but step 'reserve_inventory' after it can fail; "
            "add compensation=Compensation(...) or make it the last step"
        ),
    )


def test_the_last_step_may_go_without_compensation() -> None:
    definition = build([("create_order", first_step()), ("reserve_inventory", second_step(compensation=None))])
    assert definition.steps[-1].compensation is None
    assert "undo_reserve_inventory" not in compile_machine(definition).states


def test_a_step_needs_a_success_reply_type() -> None:
    problems = problems_of([("create_order", first_step(replies=()))])
    assert problems == ("step 'create_order': declare at least one success reply type (replies=(...,))",)


def test_a_success_reply_must_be_a_success_reply_subclass() -> None:
    problems = problems_of([("reserve_inventory", second_step(replies=(InventoryReserved, PaymentDeclined)))])
    assert len(problems) == 1
    assert_one_problem(problems, "step 'reserve_inventory': reply", "PaymentDeclined", "SuccessReply subclass")


def test_a_failure_must_be_a_failure_reply_subclass() -> None:
    problems = problems_of([("reserve_inventory", second_step(failures=(InventoryReserved,)))])
    assert len(problems) == 1
    assert_one_problem(problems, "step 'reserve_inventory': failure", "InventoryReserved", "FailureReply subclass")


@pytest.mark.parametrize("command", [OrderCreated, PlaceOrder, str])
def test_a_command_must_be_a_command_subclass(command: type[Any]) -> None:
    problems = problems_of([("create_order", first_step(command=command))])
    assert problems == (f"step 'create_order': command {command!r} must be a contracts.Command subclass",)


@pytest.mark.parametrize(
    ("overrides", "type_name"),
    [
        ({"command": ExportOrder}, "ExportOrder"),
        ({"command": ImpostorCreateOrder}, "CreateOrder"),  # same name, different model
        ({"replies": (OrderExported,)}, "OrderExported"),
        ({"failures": (ExportRefused,)}, "ExportRefused"),
    ],
)
def test_step_message_types_must_be_registered_in_contracts(overrides: dict[str, Any], type_name: str) -> None:
    problems = problems_of([("create_order", first_step(**overrides))])
    assert problems == (
        f"step 'create_order': message type {type_name!r} is not in the contracts registry; add it to contracts",
    )


@pytest.mark.parametrize("timeout", [timedelta(0), timedelta(seconds=-1)])
def test_step_timeout_must_be_positive(timeout: timedelta) -> None:
    problems = problems_of([("create_order", first_step(timeout=timeout))])
    assert problems == ("step 'create_order': timeout must be positive",)


BAD_POLICIES: list[tuple[RetryPolicy, str]] = [
    (RetryPolicy(initial_interval=timedelta(0)), "initial_interval must be positive"),
    (RetryPolicy(initial_interval=timedelta(seconds=-1)), "initial_interval must be positive"),
    (RetryPolicy(backoff_coefficient=0.5), "backoff_coefficient must be >= 1"),
    (
        RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(seconds=1)),
        "maximum_interval must be >= initial_interval",
    ),
    (RetryPolicy(maximum_attempts=0), "maximum_attempts must be >= 1 (1 means no retry)"),
]


@pytest.mark.parametrize(("policy", "problem"), BAD_POLICIES)
def test_retry_policy_problems(policy: RetryPolicy, problem: str) -> None:
    assert policy.problems() == [problem]


def test_shipped_retry_policies_have_no_problems() -> None:
    assert RetryPolicy().problems() == []
    assert RetryPolicy(maximum_attempts=1, backoff_coefficient=1.0).problems() == []
    for step in ORDER_FULFILLMENT.steps:
        assert step.retry.problems() == []
        if step.compensation is not None:
            assert step.compensation.retry.problems() == []


@pytest.mark.parametrize(("policy", "problem"), BAD_POLICIES)
def test_step_retry_policy_must_be_valid(policy: RetryPolicy, problem: str) -> None:
    problems = problems_of([("create_order", first_step(retry=policy))])
    assert problems == (f"step 'create_order': retry policy: {problem}",)


def test_a_guard_needs_a_label() -> None:
    always: Callable[[Ctx], bool] = lambda _c: True  # noqa: E731 - a tiny guard reads best inline
    problems = problems_of([("create_order", first_step(when=always))])
    assert problems == ("step 'create_order': a guard (when=) needs when_label= so diagrams can show it",)
    problems = problems_of([("create_order", first_step(when=always, when_label=""))])
    assert problems == ("step 'create_order': a guard (when=) needs when_label= so diagrams can show it",)


# --- compensation rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"replies": ()}, "declare at least one success reply type (replies=(...,))"),
        ({"command": ExportOrder}, "message type 'ExportOrder' is not in the contracts registry; add it to contracts"),
        ({"command": OrderCancelled}, f"command {OrderCancelled!r} must be a contracts.Command subclass"),
        ({"replies": (PaymentDeclined,)}, f"reply {PaymentDeclined!r} must be a contracts.SuccessReply subclass"),
        ({"failures": (OrderCancelled,)}, f"failure {OrderCancelled!r} must be a contracts.FailureReply subclass"),
        ({"timeout": timedelta(0)}, "timeout must be positive"),
        ({"timeout": timedelta(seconds=-3)}, "timeout must be positive"),
    ],
)
def test_compensation_rules(overrides: dict[str, Any], problem: str) -> None:
    problems = problems_of([("create_order", first_step(compensation=compensation(**overrides)))])
    assert problems == (f"step 'create_order' compensation: {problem}",)


@pytest.mark.parametrize(("policy", "problem"), BAD_POLICIES)
def test_compensation_retry_policy_must_be_valid(policy: RetryPolicy, problem: str) -> None:
    problems = problems_of([("create_order", first_step(compensation=compensation(retry=policy)))])
    assert problems == (f"step 'create_order' compensation: retry policy: {problem}",)


# --- the compiled state machine --------------------------------------------------------------


def test_a_state_unreachable_from_the_start_is_reported() -> None:
    machine = StateMachine(
        initial="Start",
        states=("Start", "a", "orphan", "Completed"),
        edges=(Edge("Start", "a", "start"), Edge("a", "Completed", "ok"), Edge("orphan", "Completed", "x")),
    )
    assert machine.problems() == ["state 'orphan' cannot be reached from the start"]


def test_a_state_with_no_path_to_a_terminal_is_reported() -> None:
    machine = StateMachine(
        initial="Start",
        states=("Start", "a", "loop_1", "loop_2", "Completed"),
        edges=(
            Edge("Start", "a", "start"),
            Edge("a", "Completed", "ok"),
            Edge("a", "loop_1", "odd"),
            Edge("loop_1", "loop_2", "x"),
            Edge("loop_2", "loop_1", "y"),
        ),
    )
    assert machine.problems() == [
        "state 'loop_1' has no path to a terminal state",
        "state 'loop_2' has no path to a terminal state",
    ]


def test_a_machine_without_any_terminal_state_is_reported_everywhere() -> None:
    machine = StateMachine(initial="Start", states=("Start", "a"), edges=(Edge("Start", "a", "start"),))
    assert machine.problems() == [
        "state 'Start' has no path to a terminal state",
        "state 'a' has no path to a terminal state",
    ]


def test_validation_reports_state_machine_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = StateMachine(
        initial="Start",
        states=("Start", "create_order", "stranded", "Completed"),
        edges=(Edge("Start", "create_order", "start"), Edge("create_order", "Completed", "ok")),
    )
    monkeypatch.setattr("orchestrator.definition._validate.compile_machine", lambda _definition: broken)
    problems = problems_of([("create_order", first_step())])
    assert problems == (
        "state 'stranded' cannot be reached from the start",
        "state 'stranded' has no path to a terminal state",
    )
