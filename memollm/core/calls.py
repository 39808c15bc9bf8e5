"""The call a miss makes, and what it cost.

What a call cost (its tokens, price and duration) is written into the stored entry, so every
later hit on it, in any tier and any process, adds it to the savings. The call itself, through
retries and key failover, is :mod:`memollm.core.aio.upstream` and its generated twin.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MethodType
from typing import TYPE_CHECKING, Any

from .._log import warn_limited
from ..pricing import cost_of
from ..statistics import Worth
from ..usage import prompt_text, usage_of

if TYPE_CHECKING:
    from .plan import Plan
    from .state import State

__all__ = ["Call", "with_key", "worth_of"]


# The wrapped callable and the arguments of one call: (wrapped, args, kwargs). A plain tuple:
# every call makes one, and a named tuple would cost it a tenth of a hit.
Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def with_key(plan: Plan, kwargs: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The call's keyword arguments with the API key a key pool chose, under the policy's parameter."""
    param = plan.key_param
    return {**kwargs, param: key} if param and key is not None else kwargs


def worth_of(state: State, plan: Plan, made: Call, result: Any, latency: float) -> Worth | None:
    """What a hit on this fresh result will save: its call's tokens, cost and duration."""
    try:
        wrapped, args, kwargs = made
        # The same bound arguments the key reads: a default model prices the call too.
        instance = wrapped.__self__ if isinstance(wrapped, MethodType) else None
        model = plan.keys.model_of(instance, args, kwargs)
        prompt = prompt_text((*args, *kwargs.values()))
        usage = (plan.policy.usage or usage_of)(result, prompt, model)
        return Worth(
            usage.input_tokens, usage.output_tokens, usage.estimated, usage.model, latency, cost_of(usage)
        )
    except Exception as exc:  # noqa: BLE001 - savings are reporting; the call must go on
        warn_limited(("usage", state.name), "%s: could not count a result's tokens: %r", state.name, exc)
        return None
