"""How to install an optional extra, said the same way by every message that needs one."""

from __future__ import annotations

__all__ = ["extra"]


def extra(name: str) -> str:
    """The install line for the ``name`` extra: from a checkout, and from PyPI once released."""
    checkout = f"pip install -e '.[{name}]' in a checkout of memollm"
    return f"{checkout} (pip install 'memollm-cache[{name}]' once released)"
