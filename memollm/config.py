"""Where a function's policy comes from, and in what order the sources win.

From lowest to highest precedence:

1. ``Policy`` built-in defaults
2. defaults for every function: ``memollm.configure(**settings)`` < config file
   (``[tool.memollm]`` / top level of ``memollm.toml``) < ``MEMOLLM_<SETTING>``
3. the decorator's own arguments
4. overrides by function name (glob patterns, longer patterns win):
   ``memollm.configure("pattern", **settings)`` < the file's ``overrides`` tables <
   ``MEMOLLM_OVERRIDES`` (a JSON object of pattern -> settings)

So code sets defaults, and an operator can change any function's TTL (or turn
caching off) from the file or the environment without a code change.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import from_url
from .backends.guard import CircuitBreaker, Guarded
from .backends.memory import MemoryBackend
from .errors import ConfigError
from .policy import Policy

if TYPE_CHECKING:
    from .backends import Backend

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["configure", "get_tier", "guard", "register_tier", "reset", "resolve"]

_ENV_PREFIX = "MEMOLLM_"
_POLICY_FIELDS = tuple(f.name for f in fields(Policy))


class _Layer:
    __slots__ = ("backends", "defaults", "overrides")

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {}
        self.overrides: dict[str, dict[str, Any]] = {}
        self.backends: dict[str, str] = {}


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.generation = 0
        self.code = _Layer()
        self.file: _Layer | None = None
        self.env: _Layer | None = None
        self.source: str | None = None
        self.tiers: dict[str, Any] = {}


_state = _State()
# One guard (and so one circuit breaker) per backend object, whichever policies use it.
_guards: weakref.WeakKeyDictionary[Any, Guarded] = weakref.WeakKeyDictionary()


def configure(pattern: str | None = None, /, **settings: Any) -> None:
    """Set policy settings from code.

    ``configure(ttl=600)`` sets a default for every function that does not set it
    itself; ``configure("myapp.llm.*", ttl=60)`` overrides the functions whose
    name matches the glob pattern, decorator arguments included. Takes effect on
    the next call of each function.
    """
    unknown = set(settings) - set(_POLICY_FIELDS)
    if unknown:
        raise ConfigError(f"configure(): unknown policy setting(s): {', '.join(sorted(unknown))}")
    Policy(**settings)  # validate now, where the caller can see the mistake
    with _state.lock:
        layer = _state.code
        target = layer.defaults if pattern is None else layer.overrides.setdefault(pattern, {})
        target.update(settings)
        _state.generation += 1


def reset() -> None:
    """Forget :func:`configure` settings and registered tiers; re-read the file and environment."""
    with _state.lock:
        _state.code = _Layer()
        _state.tiers = {}
        _state.file = None
        _state.env = None
        _state.generation += 1


def register_tier(name: str, backend: Backend, *, breaker: CircuitBreaker | None = None) -> None:
    """Make ``backend`` the tier that policies call ``name``.

    Every tier but the plain in-process memory tier gets a circuit breaker (``breaker``,
    or a default one): after a few consecutive failures it is skipped, and probed again
    after a backoff.
    """
    Policy(tiers=(name,))  # validates the name
    with _state.lock:
        _state.tiers[name] = guard(backend, breaker)
        _state.generation += 1


def guard(backend: Any, breaker: CircuitBreaker | None = None) -> Any:
    """``backend`` behind its circuit breaker (the plain memory tier, which cannot fail, as it is)."""
    if type(backend) is MemoryBackend or isinstance(backend, Guarded):
        return backend
    with _state.lock:
        guarded = _guards.get(backend)
        if guarded is None or (breaker is not None and guarded.breaker is not breaker):
            guarded = _guards[backend] = Guarded(backend, breaker)
        return guarded


def get_tier(name: str) -> Any:
    """The tier called ``name``: registered, configured by URL, or the default ``"memory"``.

    ``"redis"`` and ``"sqlite"`` can come from ``MEMOLLM_REDIS_URL`` and
    ``MEMOLLM_SQLITE_PATH``, and any name from the config file's ``[backends]`` table.
    """
    with _state.lock:
        backend = _state.tiers.get(name)
        if backend is not None:
            return backend
        _load()
        url = None
        for layer in (_state.env, _state.file):
            if layer is not None and name in layer.backends:
                url = layer.backends[name]
                break
        if url is not None:
            try:
                made = from_url(url)
            except (ValueError, OSError) as exc:
                raise ConfigError(f"tier {name!r}: {exc}") from None
        elif name == "memory":
            made = MemoryBackend()
        else:
            raise ConfigError(
                f"no tier named {name!r}: call memollm.register_tier({name!r}, backend), set "
                f"MEMOLLM_REDIS_URL / MEMOLLM_SQLITE_PATH, or add it to [backends] in the config file"
            )
        backend = _state.tiers[name] = guard(made)
        return backend


def resolve(name: str, decorator: Mapping[str, Any]) -> Policy:
    """Return the policy for the function called ``name`` given its decorator's settings."""
    with _state.lock:
        _load()
        layers = [_state.code, _state.file, _state.env]
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update(layer.defaults)  # type: ignore[union-attr]
        merged.update(decorator)
        for layer in layers:
            for pattern in sorted(layer.overrides, key=len):  # type: ignore[union-attr]
                if fnmatch.fnmatchcase(name, pattern):
                    merged.update(layer.overrides[pattern])  # type: ignore[union-attr]
    return Policy(**merged)


def source() -> str | None:
    """The config file in use, if any."""
    with _state.lock:
        _load()
        return _state.source


def _load() -> None:
    if _state.file is None:
        _state.file, _state.source = _read_file()
    if _state.env is None:
        _state.env = _read_env(os.environ)


def _read_file() -> tuple[_Layer, str | None]:
    layer = _Layer()
    explicit = os.environ.get(_ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"MEMOLLM_CONFIG names {explicit!r}, which is not a file")
        candidates = [path]
    else:
        candidates = [Path("memollm.toml"), Path("pyproject.toml")]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        if path.name == "pyproject.toml" and not explicit:
            data = data.get("tool", {}).get("memollm")
            if data is None:
                continue
        elif "tool" in data and "memollm" in data["tool"]:
            data = data["tool"]["memollm"]
        _fill(layer, data, str(path))
        return layer, str(path)
    return layer, None


def _fill(layer: _Layer, data: Mapping[str, Any], where: str) -> None:
    data = dict(data)
    overrides = data.pop("overrides", {})
    backends = data.pop("backends", {})
    if not isinstance(backends, Mapping) or not all(isinstance(v, str) for v in backends.values()):
        raise ConfigError(f"{where}: 'backends' must be a table of name = \"url\"")
    layer.backends = dict(backends)
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}: 'overrides' must be a table of pattern = {{settings}}")
    layer.defaults = Policy.parse_settings(data, source=where)
    for pattern, settings in overrides.items():
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where}: overrides.{pattern} must be a table of settings")
        layer.overrides[pattern] = Policy.parse_settings(settings, source=f"{where} overrides.{pattern}")


def _read_env(environ: Mapping[str, str]) -> _Layer:
    layer = _Layer()
    text = environ.get(_ENV_PREFIX + "OVERRIDES")
    if text:
        try:
            overrides = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"MEMOLLM_OVERRIDES is not valid JSON: {exc}") from None
        if not isinstance(overrides, dict):
            raise ConfigError("MEMOLLM_OVERRIDES must be a JSON object of pattern -> settings")
        _fill(layer, {"overrides": overrides}, "MEMOLLM_OVERRIDES")
    for tier, variable in (("redis", "REDIS_URL"), ("sqlite", "SQLITE_PATH")):
        if environ.get(_ENV_PREFIX + variable):
            value = environ[_ENV_PREFIX + variable]
            layer.backends[tier] = value if "://" in value else f"sqlite://{value}"
    raw = {
        name: environ[_ENV_PREFIX + name.upper()]
        for name in _POLICY_FIELDS
        if _ENV_PREFIX + name.upper() in environ
    }
    layer.defaults = Policy.parse_settings(raw, source="environment (MEMOLLM_*)")
    return layer
