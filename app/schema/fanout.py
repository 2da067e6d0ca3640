"""One execution per live message, not one per subscriber (docs/architecture.md, "Live streams").

A message on the bus reaches every subscriber of its stream; before, each of them
built its own GraphQL object from it and graphql-core completed the selection for
each, so a heartbeat watched by 1,000 dashboards cost 1,000 executions. Now:

- `shared_payload(message, build)` gives every subscriber the same object for the
  same message (built once);
- `FanoutExecutor` executes a subscription event for such a payload once per
  (payload, operation, variables, viewer) and hands the same result to every
  subscriber with that key. The viewer is part of the key (user, global role,
  memberships), so what one person may see never answers another's subscription.

Only payloads made here are shared. A payload that depends on who is watching (a
satellite row read with the viewer's rights) is built once per viewer scope
(`shared_payload_for`).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from graphql import OperationType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.bus import Message
from app.services.people.principals import Principal

T = TypeVar("T")

# Messages arrive in bursts of one fan-out each; a few hundred recent entries cover the
# messages in flight, and holding them keeps their ids from being reused meanwhile.
_PAYLOADS_KEPT = 256
_RESULTS_KEPT = 1024

_payloads: OrderedDict[Hashable, tuple[Message, Any]] = OrderedDict()
_shared: OrderedDict[int, Any] = OrderedDict()
_results: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
_counter = {"executions": 0}


def _keep(table: OrderedDict[Any, Any], key: Hashable, value: Any, limit: int) -> None:
    table[key] = value
    while len(table) > limit:
        table.popitem(last=False)


def shared_payload(message: Message, build: Callable[[Message], T]) -> T:
    """`build(message)`, once per message however many subscribers ask."""
    entry = _payloads.get(id(message))
    if entry is not None and entry[0] is message:
        return entry[1]  # type: ignore[no-any-return]
    payload = build(message)
    _keep(_payloads, id(message), (message, payload), _PAYLOADS_KEPT)
    _keep(_shared, id(payload), payload, _PAYLOADS_KEPT * 2)
    return payload


async def shared_payload_for(message: Message, principal: Principal,
                             build: Callable[[], Awaitable[T]]) -> T:
    """`await build()`, once per message and viewer scope (for a payload read with the
    viewer's rights, such as a satellite row): subscribers with the same user, role and
    memberships share it; the others build their own."""
    key = (id(message), viewer_scope(principal))
    entry = _payloads.get(key)
    if entry is None or entry[0] is not message:
        entry = (message, asyncio.ensure_future(build()))
        _keep(_payloads, key, entry, _PAYLOADS_KEPT)
    payload: T = await asyncio.shield(entry[1])
    if payload is not None:
        _keep(_shared, id(payload), payload, _PAYLOADS_KEPT * 2)
    return payload


def viewer_scope(principal: Principal | None) -> Hashable:
    """What decides what a person may see: results are shared only within one scope."""
    if principal is None:
        return None
    return (principal.user_id, principal.global_role,
            tuple(sorted(principal.memberships.items())))


def _viewer_key(context: Any) -> Hashable:
    return viewer_scope(getattr(context, "principal", None))


class FanoutExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, executing a shared subscription payload once per key."""

    _selection_key: Hashable | None = None

    def _selection(self) -> Hashable:
        if self._selection_key is None:
            variables = json.dumps(self.variable_values.coerced, sort_keys=True, default=str)
            self._selection_key = (id(self.operation), variables)
        return self._selection_key

    def build_per_event_executor(self, payload: Any) -> Any:
        selection = self._selection()  # once per subscription, copied into each event's
        if _shared.get(id(payload)) is payload:
            cached = _results.get((id(payload), selection, _viewer_key(self.context_value)))
            if cached is not None and cached[0] is payload:
                return _Executed(cached[1])  # no per-event copy of the executor to make
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        payload = self.root_value
        if (self.operation.operation is not OperationType.SUBSCRIPTION
                or _shared.get(id(payload)) is not payload):
            return super().execute_operation(serially)
        key = (id(payload), self._selection(), _viewer_key(self.context_value))
        cached = _results.get(key)
        if cached is not None and cached[0] is payload:
            return _share(cached[1])
        _counter["executions"] += 1
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            # Subscribers arriving while it runs wait on the same execution.
            result = asyncio.ensure_future(result)
        _keep(_results, key, (payload, result), _RESULTS_KEPT)
        return _share(result)


class _Executed:
    """Stands in for a per-event executor whose result is already known."""

    __slots__ = ("_result",)

    def __init__(self, result: Any) -> None:
        self._result = result

    def execute_operation(self, serially: bool | None = None) -> Any:
        return _share(self._result)


def _share(result: Any) -> Any:
    # A subscriber that leaves mid-execution must not cancel the others' execution.
    return asyncio.shield(result) if isinstance(result, asyncio.Future) else result


def shared_executions() -> int:
    """Executions of shared payloads so far (each answered every subscriber of its key)."""
    return _counter["executions"]


__all__ = ["FanoutExecutor", "shared_executions", "shared_payload", "shared_payload_for",
           "viewer_scope"]
