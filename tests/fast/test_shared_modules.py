"""Workers share the workflow modules between cases (`registry.SHARED_WORKFLOWS`): nothing in
them may hold state one case could change and another see. Everything a workflow module or
one of its classes keeps at module or class level must be immutable (or, for the SDK's
`RetryPolicy`, only handed to the SDK)."""

from __future__ import annotations

import enum
import importlib
import pkgutil
import types
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy, SearchAttributeKey

import makegood.workflows
from makegood.registry import SHARED_WORKFLOWS

SCALARS = (str, bytes, int, float, bool, type(None), timedelta, enum.Enum)
HANDED_TO_THE_SDK = (RetryPolicy, SearchAttributeKey)


def modules() -> list[types.ModuleType]:
    pkg = makegood.workflows
    names = [pkg.__name__] + [
        m.name for m in pkgutil.walk_packages(pkg.__path__, f"{pkg.__name__}.")
    ]
    return [importlib.import_module(name) for name in names]


def immutable(value: Any) -> bool:
    if isinstance(value, SCALARS + HANDED_TO_THE_SDK + (type,)):
        return True  # a class is code: its own attributes are checked where it is defined
    if isinstance(value, (tuple, frozenset)):
        return all(immutable(v) for v in value)
    if isinstance(value, types.MappingProxyType):
        return all(immutable(k) and immutable(v) for k, v in value.items())
    return False


def code(value: Any) -> bool:
    """What a module holds as code, not data: modules, functions, classes, typing objects."""
    return (
        isinstance(value, (types.ModuleType, types.FunctionType, type, staticmethod))
        or callable(value)
        or type(value).__module__ in ("typing", "__future__", "typing_extensions")
        or isinstance(value, (property, classmethod))
    )


def mutable_state() -> list[str]:
    found = []
    for module in modules():
        for name, value in vars(module).items():
            if name.startswith("__") or (code(value) and not isinstance(value, type)):
                continue
            if isinstance(value, type):
                if value.__module__ != module.__name__:
                    continue  # imported, checked where it is defined (or not ours)
                for attr, held in vars(value).items():
                    if attr.startswith("__") or code(held) or immutable(held):
                        continue
                    found.append(f"{module.__name__}.{name}.{attr}: {type(held).__name__}")
            elif not immutable(value):
                found.append(f"{module.__name__}.{name}: {type(value).__name__}")
    return found


def test_the_shared_workflow_modules_hold_no_mutable_state() -> None:
    assert makegood.workflows.__name__ == SHARED_WORKFLOWS
    assert mutable_state() == []


def test_the_check_finds_a_dict_a_list_and_a_class_level_list(monkeypatch: Any) -> None:
    from makegood.workflows import case, recovery

    monkeypatch.setattr(case, "SEEN", {}, raising=False)
    monkeypatch.setattr(recovery.RecoveryWorkflow, "queue", [], raising=False)
    assert sorted(mutable_state()) == [
        "makegood.workflows.case.SEEN: dict",
        "makegood.workflows.recovery.RecoveryWorkflow.queue: list",
    ]
