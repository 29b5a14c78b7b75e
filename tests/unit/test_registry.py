"""Deployed definitions by name and version, and loading them from SAGALINE_SAGA_DEFINITIONS."""

from __future__ import annotations

import pytest

from orchestrator.definition import DefinitionRegistry, InvalidSagaDefinition, UnknownDefinition
from orchestrator.sagas import ORDER_FULFILLMENT, REGISTRY, load_registry
from tests.support.versioned_sagas import ORDER_FULFILLMENT_V2


def test_new_sagas_start_on_the_latest_version_old_ones_keep_theirs() -> None:
    registry = DefinitionRegistry([ORDER_FULFILLMENT_V2, ORDER_FULFILLMENT])
    assert registry.latest("order_fulfillment") is ORDER_FULFILLMENT_V2
    assert registry.for_start("PlaceOrder") is ORDER_FULFILLMENT_V2
    assert registry.get("order_fulfillment", 1) is ORDER_FULFILLMENT
    assert registry.versions("order_fulfillment") == [1, 2]
    assert [d.version for d in registry] == [1, 2]
    assert "order_fulfillment" in registry
    assert registry.for_start("NoSuchStart") is None


def test_an_undeployed_version_says_how_to_fix_it() -> None:
    with pytest.raises(UnknownDefinition, match=r"v3 is not deployed \(deployed: v1\); deploy it again"):
        REGISTRY.get("order_fulfillment", 3)
    with pytest.raises(UnknownDefinition, match="no saga definition 'refunds'; deployed: order_fulfillment"):
        REGISTRY.latest("refunds")


def test_a_version_registered_twice_is_invalid() -> None:
    with pytest.raises(InvalidSagaDefinition, match="order_fulfillment v1 is registered twice"):
        DefinitionRegistry([ORDER_FULFILLMENT, ORDER_FULFILLMENT])


def test_loading_from_the_setting() -> None:
    assert load_registry().latest("order_fulfillment") is ORDER_FULFILLMENT
    both = load_registry("tests.support.versioned_sagas:V1_AND_V2")
    assert both.versions("order_fulfillment") == [1, 2]
    for spec, words in [
        ("no-colon", "expected 'package.module:ATTRIBUTE'"),
        ("tests.support.no_such_module:X", "cannot be loaded"),
        ("tests.support.versioned_sagas:MISSING", "cannot be loaded"),
        ("tests.support.order_replies:ORDER_ID", "neither a registry nor a list"),
    ]:
        with pytest.raises(UnknownDefinition, match=words):
            load_registry(spec)
