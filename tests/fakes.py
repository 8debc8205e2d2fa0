"""In-memory providers built from the activity specs, for the fast tier.

`Fakes` registers one activity per spec in `makegood.domain.calls.ALL`, under `spec.name`,
taking `spec.request` and returning `spec.result`, as the real activities do (test_fakes.py
holds them to the specs the way test_contract.py holds the real ones). They keep the real
providers' promise, so a test can assert "paid exactly once":

- a side effect's idempotency key is `<workflow id>:<step>` (from `activity.info()`);
- a repeated key returns the first result and is not a second effect;
- a key reused for a different request is refused as a permanent error.

Every attempt is recorded (`calls`), every effect once (`effects`). Per activity, or per step
of it, a test scripts what the next calls do: succeed with a given result, fail transiently
(retryable) N times, fail for good with a reason, commit and then lose the answer, or hold
until the test lets go. What the "world" looks like (the fleet, stock, whether a horn sounds,
earlier cases for the history lookup) is per-test data in `World`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from makegood.domain import calls, ids
from makegood.domain.calls import ActivitySpec
from makegood.registry import CaseWorkers, case_workers, workflow_runner
from tests.world import Refused, World

__all__ = ["Fakes", "Refused", "Script", "World", "receipt"]


# ------------------------------------------------------------------ scripted behaviour
@dataclass(frozen=True)
class Fail:
    reason: str
    retryable: bool = True
    after_effect: bool = False  # the provider commits, then its answer is lost


@dataclass(frozen=True)
class Return:
    result: BaseModel | None


@dataclass
class Hold:
    """Keeps the call in flight until the test calls `release()`."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.gate.set()


Behaviour = Fail | Return | Hold


class Script:
    """What the next calls of one activity (or one of its steps) do, in order; then `forever`."""

    def __init__(self) -> None:
        self.queue: deque[Behaviour] = deque()
        self.forever: Behaviour | None = None
        self.holds: list[Hold] = []  # every hold, taken or not, so a test's end lets all go

    def fail(self, times: int = 1, reason: str = "provider unavailable") -> Script:
        """Transient failures (retryable), then whatever comes next."""
        self.queue.extend(Fail(reason) for _ in range(times))
        return self

    def fail_permanently(self, reason: str) -> Script:
        """Every call from now on is refused, non-retryable, with this reason."""
        self.forever = Fail(reason, retryable=False)
        return self

    def fail_always(self, reason: str = "provider unavailable") -> Script:
        """Every call fails transiently: retries run out."""
        self.forever = Fail(reason)
        return self

    def lose_reply(self, times: int = 1, reason: str = "connection reset") -> Script:
        """The effect happens, the answer is lost (a retry must not do it again)."""
        self.queue.extend(Fail(reason, after_effect=True) for _ in range(times))
        return self

    def returns(self, result: BaseModel | None, times: int | None = None) -> Script:
        """Answer with this result (as the effect's result), `times` times or from now on."""
        if times is None:
            self.forever = Return(result)
        else:
            self.queue.extend(Return(result) for _ in range(times))
        return self

    def hold(self) -> Hold:
        held = Hold()
        self.queue.append(held)
        self.holds.append(held)
        return held

    def next(self) -> Behaviour | None:
        return self.queue.popleft() if self.queue else self.forever


# ------------------------------------------------------------------ what the fakes record
@dataclass(frozen=True)
class Call:
    """One attempt of one activity, as the provider saw it."""

    name: str
    request: Any
    workflow_id: str
    key: str | None  # `<workflow id>:<step>` for side effects, None for reads
    attempt: int
    outcome: str  # "done" (the effect happened), "repeat" (same key: first result), "failed"
    error: str | None = None

    @property
    def step(self) -> str | None:
        return getattr(self.request, "step", None)


@dataclass(frozen=True)
class Effect:
    """A side effect that happened: once per idempotency key."""

    name: str
    key: str | None
    request: Any
    result: Any

    @property
    def step(self) -> str | None:
        return ids.step_of(self.key) if self.key else None


def _fingerprint(name: str, request: Any) -> str:
    body = request.model_dump_json(exclude={"step"}) if isinstance(request, BaseModel) else ""
    return hashlib.sha256(f"{name}\n{body}".encode()).hexdigest()


def receipt(
    result_type: type[BaseModel],
    spec: ActivitySpec[Any, Any],
    request: Any,
    key: str | None,
    n: int,
    given: dict[str, Any],
) -> BaseModel:
    """A plausible result of `result_type` for this request: what the world said (`given`),
    the idempotency key, fresh ids for `*_id` fields, fields named like the request's, now for
    datetimes, True for flags, and the operation's name for anything else that is text."""
    fields: dict[str, Any] = {}
    for name, info in result_type.model_fields.items():
        if name in given:
            fields[name] = given[name]
        elif name == "idempotency_key":
            fields[name] = key
        elif name.endswith("_id"):
            fields[name] = f"{name.removesuffix('_id')}-{n}"
        elif hasattr(request, name):
            fields[name] = getattr(request, name)
        elif info.annotation is datetime:
            fields[name] = datetime.now(UTC)
        elif info.annotation is bool:
            fields[name] = True
        elif info.annotation is str:
            fields[name] = spec.name
    return result_type.model_validate(fields)


class Fakes:
    """The in-memory providers, one activity per spec, and what they were asked and did."""

    def __init__(
        self, world: World | None = None, specs: Sequence[ActivitySpec[Any, Any]] = calls.ALL
    ) -> None:
        self.world = world or World()
        self.specs = tuple(specs)
        self.calls: list[Call] = []
        self.effects: list[Effect] = []
        self._done: dict[str, tuple[str, Any]] = {}  # key -> (fingerprint, first result)
        self._scripts: dict[tuple[str, str | None], Script] = {}
        self._seq = itertools.count(1)

    # ---- scripting
    def on(self, name: str | ActivitySpec[Any, Any], step: str | None = None) -> Script:
        """The script of an activity (every call), or of one step of it (that step's calls)."""
        spec_name = name if isinstance(name, str) else name.name
        if spec_name not in calls.BY_NAME:
            raise KeyError(f"no activity spec named {spec_name!r}")
        return self._scripts.setdefault((spec_name, step), Script())

    def release_all(self) -> None:
        for script in self._scripts.values():
            for held in script.holds:
                held.release()

    # ---- the activities
    def activities(self) -> list[Callable[..., Any]]:
        return [self._activity(spec) for spec in self.specs]

    def worker(self, client: Client, task_queue: str) -> CaseWorkers:
        """Workers running the real workflows (in the strict sandbox) against these providers."""
        return case_workers(
            client, task_queue, self.activities(), runner=workflow_runner(strict=True)
        )

    def _activity(self, spec: ActivitySpec[Any, Any]) -> Callable[..., Any]:
        async def run(req: Any) -> Any:
            return await self._call(spec, req)

        run.__name__ = run.__qualname__ = spec.name
        run.__annotations__ = {"req": spec.request, "return": spec.result}
        return activity.defn(name=spec.name)(run)

    async def _call(self, spec: ActivitySpec[Any, Any], req: Any) -> Any:
        info = activity.info()
        workflow_id = info.workflow_id or ""  # always set for a workflow's activity
        step = getattr(req, "step", None)
        key = ids.idempotency_key(workflow_id, step) if step is not None else None

        def record(outcome: str, error: str | None = None) -> None:
            self.calls.append(Call(spec.name, req, workflow_id, key, info.attempt, outcome, error))

        script = self._scripts.get((spec.name, step)) or self._scripts.get((spec.name, None))
        behaviour = script.next() if script else None
        if isinstance(behaviour, Hold):
            behaviour.entered.set()
            await behaviour.gate.wait()
            behaviour = None
        if isinstance(behaviour, Fail) and not behaviour.after_effect:
            record("failed", behaviour.reason)
            raise self._error(behaviour.reason, behaviour.retryable)

        if key is not None and key in self._done:
            fingerprint, first = self._done[key]
            if fingerprint != _fingerprint(spec.name, req):
                reason = f"idempotency key {key!r} was already used for a different request"
                record("failed", reason)
                raise self._error(reason, retryable=False)
            record("repeat")
            return first

        try:
            result = self._effect(spec, req, key, behaviour)
        except Refused as err:
            record("failed", str(err))
            raise self._error(str(err), retryable=False) from None
        if key is not None:
            self._done[key] = (_fingerprint(spec.name, req), result)
        self.effects.append(Effect(spec.name, key, req, result))
        if isinstance(behaviour, Fail):  # committed, answer lost
            record("failed", behaviour.reason)
            raise self._error(behaviour.reason, behaviour.retryable)
        record("done")
        return result

    def _effect(
        self, spec: ActivitySpec[Any, Any], req: Any, key: str | None, behaviour: Behaviour | None
    ) -> Any:
        if isinstance(behaviour, Return):
            return behaviour.result
        hook = getattr(self.world, spec.name, None)
        given = hook(req) if hook is not None else {}
        if spec.result is type(None):
            return None
        if isinstance(given, BaseModel):
            return given
        return receipt(spec.result, spec, req, key, next(self._seq), given)

    @staticmethod
    def _error(reason: str, retryable: bool) -> ApplicationError:
        kind = "TransientProviderError" if retryable else "PermanentProviderError"
        return ApplicationError(reason, {"code": "fake"}, type=kind, non_retryable=not retryable)

    # ---- what happened
    def called(self, name: str | ActivitySpec[Any, Any]) -> list[Call]:
        spec_name = name if isinstance(name, str) else name.name
        return [c for c in self.calls if c.name == spec_name]

    def done(
        self, name: str | ActivitySpec[Any, Any], workflow_id: str | None = None
    ) -> list[Effect]:
        """The effects of one activity, in order; only one workflow's if given."""
        spec_name = name if isinstance(name, str) else name.name
        return [
            e
            for e in self.effects
            if e.name == spec_name
            and (
                workflow_id is None
                or (e.key is not None and ids.case_of(e.key) == ids.case_of(workflow_id))
            )
        ]

    def steps(self, name: str | ActivitySpec[Any, Any]) -> list[str | None]:
        """The logical steps of one activity's effects, in order (`refund`, `rebook:1`...)."""
        return [e.step for e in self.done(name)]

    def messages(self, to: str | None = None) -> list[Effect]:
        return [e for e in self.done(calls.SEND_MESSAGE) if to is None or e.request.to == to]

    def paid(self) -> list[tuple[str | None, str]]:
        """(step, amount) of every payment made, in order."""
        return [(e.step, str(e.request.amount)) for e in self.done(calls.MAKE_PAYMENT)]
