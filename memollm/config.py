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
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from ._log import warn_once
from .errors import ConfigError
from .policy import Policy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["backend_url", "configure", "generation", "reset", "resolve", "source"]

_ENV_PREFIX = "MEMOLLM_"
_POLICY_FIELDS = tuple(f.name for f in fields(Policy))


class _Layer:
    __slots__ = ("backends", "defaults", "overrides")

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {}
        self.overrides: dict[str, dict[str, Any]] = {}
        self.backends: dict[str, str] = {}


class Generation:
    """Counts configuration changes: a cached function rebuilds its plan when ``value`` moved."""

    __slots__ = ("lock", "value")

    def __init__(self) -> None:
        self.lock = threading.RLock()  # held by everything that changes configuration or tiers
        self.value = 0

    def bump(self) -> None:
        """Record a change (under ``lock``)."""
        self.value += 1


generation = Generation()


class _State:
    def __init__(self) -> None:
        self.code = _Layer()
        self.file: _Layer | None = None
        self.env: _Layer | None = None
        self.source: str | None = None


_state = _State()


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
    with generation.lock:
        layer = _state.code
        target = layer.defaults if pattern is None else layer.overrides.setdefault(pattern, {})
        target.update(settings)
        generation.bump()


_on_reset: list[Callable[[], None]] = []  # what else forgets on reset (the tier registry)


def on_reset(forget: Callable[[], None]) -> None:
    """Call ``forget`` on every :func:`reset` (a module above this one registers what it keeps)."""
    _on_reset.append(forget)


def reset() -> None:
    """Forget :func:`configure` settings and registered tiers; re-read the file and environment."""
    with generation.lock:
        _state.code = _Layer()
        _state.file = None
        _state.env = None
        for forget in _on_reset:
            forget()
        generation.bump()


def backend_url(name: str) -> str | None:
    """The URL the environment or the config file's ``[backends]`` gives tier ``name``, if any."""
    with generation.lock:
        _load()
        for layer in (_state.env, _state.file):
            if layer is not None and name in layer.backends:
                return layer.backends[name]
    return None


def resolve(name: str, decorator: Mapping[str, Any]) -> Policy:
    """Return the policy for the function called ``name`` given its decorator's settings."""
    with generation.lock:
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
    with generation.lock:
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
    _warn_unknown(environ)
    return layer


# Variables read elsewhere (the embedder, the proxy's key pool) besides the policy's settings.
_OTHER_VARIABLES = (
    "OVERRIDES",
    "REDIS_URL",
    "SQLITE_PATH",
    "CONFIG",
    "EMBED_MODEL",
    "EMBED_MODEL_PATH",
    "API_KEYS",
)


def _warn_unknown(environ: Mapping[str, str]) -> None:
    """A MEMOLLM_ variable that nothing reads is a typo: say so, naming the closest one."""
    import difflib

    known = {_ENV_PREFIX + name.upper() for name in _POLICY_FIELDS} | {
        _ENV_PREFIX + v for v in _OTHER_VARIABLES
    }
    for variable in sorted(environ):
        if variable.startswith(_ENV_PREFIX) and variable not in known:
            close = difflib.get_close_matches(variable, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; memollm reads {', '.join(sorted(known))}"
            warn_once(("env", variable), "environment variable %s is not a memollm setting and is ignored%s",
                      variable, hint)  # fmt: skip
