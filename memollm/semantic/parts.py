"""What a semantic lookup of one call needs from the call: its prompt text and its partition."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SemanticParts"]


@dataclass(frozen=True, slots=True)
class SemanticParts:
    """What a semantic lookup of a call needs: its prompt text and its exact partition."""

    text: str
    partition: str
