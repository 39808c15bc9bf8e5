"""The evidence of error-bounded semantic hits: comparisons counted per partition and per entry.

Kept in the tiers beside the entries (Redis for many processes, SQLite across restarts, else
the memory tier), so every worker learns from every other's comparisons. A tier that fails
gives no evidence, which means exploring, never serving: failing safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...backends.guard import Guarded
from ...backends.names import ENTRY_EVIDENCE, PARTITION_EVIDENCE
from ...semantic.bounded import Evidence, observation
from ..walk import failed

if TYPE_CHECKING:
    from ..plan import Plan
    from ..state import State

__all__ = ["PARTITION_TTL", "read", "record"]

PARTITION_TTL = 30 * 86400.0  # seconds a partition's evidence outlives its last comparison
_PARTITION, _ENTRY = PARTITION_EVIDENCE, ENTRY_EVIDENCE


def _call(tier: Any, op: str, *args: Any) -> Any:
    if isinstance(tier, Guarded):
        backend = tier.backend
        return tier.call(lambda: getattr(backend, op)(*args))
    return getattr(tier, op)(*args)


def read(state: State, plan: Plan, key: str, *, entry: bool = False) -> Evidence:
    """The comparisons counted for a partition (or an entry); none if the tier fails."""
    tier = plan.evidence
    if tier is None:
        return Evidence()
    try:
        return Evidence.from_counts(_call(tier, "get_counts", f"{key}{_ENTRY if entry else _PARTITION}"))
    except Exception as exc:  # noqa: BLE001 - no evidence: the candidate is explored, never served
        failed(state, plan, tier.name, exc)
        return Evidence()


def record(state: State, plan: Plan, partition: str, entry: str, *, similarity: float, same: bool) -> None:
    """Count one comparison for the partition and for the entry it was about."""
    tier = plan.evidence
    if tier is None:
        return
    deltas = observation(similarity, same)
    try:
        _call(tier, "add_counts", f"{partition}{_PARTITION}", deltas, PARTITION_TTL)
        _call(tier, "add_counts", f"{entry}{_ENTRY}", deltas, plan.physical_ttl)
    except Exception as exc:  # noqa: BLE001 - a failing tier is skipped: this comparison is lost
        failed(state, plan, tier.name, exc)
