"""What model calls cost: a price table per model, shipped as data and extendable.

Prices are US dollars per million tokens, input and output. The shipped table
(``memollm/data/prices.json``) holds list prices of common models; add or override
entries with :func:`register`. A model name matches the longest entry it starts with,
after any ``provider/`` prefix, so ``"openai/gpt-4o-2024-08-06"`` costs what ``"gpt-4o"``
costs. A model with no entry has no price: its tokens are counted, its money is not.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from importlib import resources

from .errors import ConfigError
from .usage import Usage

__all__ = ["Price", "cost_of", "price_of", "register", "registered"]


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million input and output tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        """Dollars for ``usage`` at this price."""
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1_000_000


_lock = threading.Lock()
_table: dict[str, Price] | None = None
_memo: dict[str, Price | None] = {}
generation = 0  # moves on whenever a price changes: what was computed from the old ones is stale


def _load() -> dict[str, Price]:
    global _table  # noqa: PLW0603 - the table is process-wide
    if _table is None:
        raw = json.loads(resources.files("memollm").joinpath("data/prices.json").read_text("utf-8"))
        _table = {name.lower(): Price(*pair) for name, pair in raw["models"].items()}
    return _table


def register(model: str, *, input: float, output: float) -> None:
    """Set the price of ``model`` (and of every model name that starts with it).

    Args:
        model: a model name or prefix, e.g. ``"my-finetune"`` or ``"gpt-4o"``.
        input: US dollars per million input tokens.
        output: US dollars per million output tokens.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"pricing.register: model must be a non-empty string, got {model!r}")
    for name, value in (("input", input), ("output", output)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise ConfigError(f"pricing.register({model!r}): {name} must be $/MTok >= 0, got {value!r}")
    with _lock:
        _load()[model.strip().lower()] = Price(float(input), float(output))
        _memo.clear()
        global generation  # noqa: PLW0603 - the table is process-wide
        generation += 1


def registered() -> dict[str, Price]:
    """A copy of the price table: model name or prefix to price."""
    with _lock:
        return dict(_load())


def price_of(model: str | None) -> Price | None:
    """The price of ``model``, or ``None`` when the table has no entry for it."""
    if not model:
        return None
    found = _memo.get(model, _memo)
    if found is not _memo:
        return found  # type: ignore[return-value]
    name = model.lower().rsplit("/", 1)[-1]
    with _lock:
        table = _load()
        best = max((entry for entry in table if name.startswith(entry)), key=len, default=None)
        price = None if best is None else table[best]
        if len(_memo) < 4096:
            _memo[model] = price
    return price


def cost_of(usage: Usage) -> float | None:
    """Dollars ``usage`` cost, or ``None`` when its model has no price."""
    price = price_of(usage.model)
    return None if price is None else price.cost(usage)
