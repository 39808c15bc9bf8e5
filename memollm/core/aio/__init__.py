"""The async face of a call, and the one source of both faces.

:mod:`memollm.core.sync` is generated from these modules by ``scripts/unasync.py``: edit
here, then run it. A test fails when the generated face is not current.
"""

from .face import AsyncFace

__all__ = ["AsyncFace"]
