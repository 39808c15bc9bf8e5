"""What one answer is worth: the tokens, money and time a hit on it saves; money written for people."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import pricing
from .pricing import cost_of
from .usage import Usage

__all__ = ["MEMO_MODEL_CHARS", "Worth", "money"]

_KNOWN_LIMIT = 4096
# Worths of longer model names (only hostile stored bytes have them) are not kept beyond their hit.
MEMO_MODEL_CHARS = 256


@dataclass(frozen=True, slots=True)
class Worth:
    """What one hit on a stored entry saves: the tokens, money and time of the call that made it.

    ``cost`` is ``None`` when the model has no price; ``estimated`` when the tokens were
    estimated from text rather than reported by the response.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    model: str | None = None
    latency: float = 0.0
    cost: float | None = None

    @classmethod
    def from_meta(cls, meta: object) -> Worth | None:
        """The worth recorded in an entry's metadata (``meta()``'s form), if any and well-formed."""
        raw = meta.get("u") if type(meta) is dict else None
        if not (isinstance(raw, list) and len(raw) == 5):
            return None
        tin, tout, est, model, latency = raw
        if not (
            type(tin) is int
            and type(tout) is int
            and type(latency) in (int, float)
            and 0 <= latency < 1e9  # also rejects NaN
        ):
            return None
        model = model if isinstance(model, str) else None
        if model is not None and len(model) > MEMO_MODEL_CHARS:
            return cls._made(tin, tout, est, model, latency)
        # Validated above, so equal probes mean equal worths; a hit on an entry read from a
        # shared tier (no memo beside it) then skips pricing and building the Worth again.
        probe = (tin, tout, bool(est), model, latency, pricing.generation)
        found = _known.get(probe)
        if found is None:
            found = cls._made(tin, tout, est, model, latency)
            if len(_known) >= _KNOWN_LIMIT:
                _known.clear()
            _known[probe] = found
        return found

    @classmethod
    def _made(cls, tin: int, tout: int, est: object, model: str | None, latency: float) -> Worth:
        usage = Usage(max(tin, 0), max(tout, 0), bool(est), model)
        cost = cost_of(usage)
        return cls(usage.input_tokens, usage.output_tokens, usage.estimated, model, float(latency), cost)

    def meta(self) -> list[Any]:
        """The form kept in an envelope's metadata."""
        return [self.input_tokens, self.output_tokens, self.estimated, self.model, round(self.latency, 6)]


def money(dollars: float) -> str:
    """US dollars for people: cents for sums of a cent or more, two significant digits below."""
    if dollars == 0:
        return "$0"
    if abs(dollars) >= 0.01:
        return f"${dollars:,.2f}"
    places = 1 - math.floor(math.log10(abs(dollars)))
    return f"${dollars:.{places}f}" if places <= 10 else f"${dollars:.1e}"


_known: dict[tuple[Any, ...], Worth] = {}  # validated metadata (and the prices' generation) -> its worth
