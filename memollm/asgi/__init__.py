"""ASGI integration: a caching middleware for OpenAI-compatible endpoints."""

from __future__ import annotations

from .middleware import DEFAULT_PATHS, CacheMiddleware

__all__ = ["DEFAULT_PATHS", "CacheMiddleware"]
