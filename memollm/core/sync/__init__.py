# Generated from memollm/core/aio/__init__.py by scripts/unasync.py: edit that file, then run the script.
"""The sync face of a call, generated from :mod:`memollm.core.aio`: edit that, never this."""

from .face import SyncFace

__all__ = ["SyncFace"]
