"""``memollm stats``, ``clear`` and ``inspect``: look into a shared cache (Redis or SQLite)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ..statistics import money
from ._app import main

_HINT = "say which cache: --redis URL or --sqlite PATH (or set MEMOLLM_REDIS_URL / MEMOLLM_SQLITE_PATH)"


def _store_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--sqlite", "sqlite_path", default=None, help="a memollm SQLite cache file")(fn)
    return click.option(
        "--redis", "redis_url", default=None, help="a Redis URL, e.g. redis://localhost:6379/0"
    )(fn)


def open_store(redis_url: str | None, sqlite_path: str | None) -> tuple[Any, str]:
    """The backend to look into, and a name for it that holds no password."""
    if redis_url and sqlite_path:
        raise click.ClickException("give --redis or --sqlite, not both")
    redis_url = redis_url or (None if sqlite_path else os.environ.get("MEMOLLM_REDIS_URL"))
    sqlite_path = sqlite_path or (None if redis_url else os.environ.get("MEMOLLM_SQLITE_PATH"))
    if redis_url:
        from ..backends import from_url
        from ..backends.redis import redact

        if not redis_url.startswith(
            ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        ):
            got = redact(redis_url)
            raise click.ClickException(f"--redis must be a redis://, rediss:// or unix:// URL, got {got!r}")
        name = redact(redis_url)
        try:
            backend: Any = from_url(redis_url)
            backend.client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure: say which server and why
            raise click.ClickException(f"cannot reach Redis at {name}: {exc}") from None
        return backend, name
    if sqlite_path:
        from ..backends.sqlite import SQLiteBackend

        path = Path(sqlite_path.split("://", 1)[-1])
        if not path.is_file():
            raise click.ClickException(f"no SQLite cache at {path}")
        try:
            backend = SQLiteBackend(path)
            backend.stats()
        except Exception as exc:  # noqa: BLE001 - not a memollm database, or unreadable
            raise click.ClickException(f"cannot read {path} as a memollm cache: {exc}") from None
        return backend, str(path)
    raise click.ClickException(_HINT)


def _describe(data: bytes) -> list[Any] | None:
    from ..codec import Codec
    from ..errors import CodecError

    try:
        return Codec().describe(data)
    except CodecError:
        return None


@main.command()
@_store_options
@click.option("--namespace", default=None, help="only this namespace")
@click.option(
    "--limit", type=click.IntRange(min=1), default=1_000_000, show_default=True, help="entries read"
)
def stats(redis_url: str | None, sqlite_path: str | None, namespace: str | None, limit: int) -> None:
    """Entries, size and stored worth per function in a shared cache."""
    from rich.table import Table

    from ..statistics import Worth
    from ._console import console as make_console

    backend, name = open_store(redis_url, sqlite_path)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    functions: dict[str, tuple[str, str]] = {}  # "namespace:digest" -> its group
    unreadable = 0
    for key, data in backend.scan(f"{namespace}:" if namespace else "", limit=limit):
        env = _describe(data)
        if env is None:
            unreadable += 1
            continue
        meta = env[4] if isinstance(env[4], dict) else {}
        group = groups.setdefault(
            (key.split(":", 1)[0], str(meta.get("f", "?"))),
            {"entries": 0, "bytes": 0, "tokens": 0, "cost": 0.0, "oldest": None},
        )
        functions[":".join(key.split(":", 2)[:2])] = (key.split(":", 1)[0], str(meta.get("f", "?")))
        group["entries"] += 1
        group["bytes"] += len(data)
        worth = Worth.from_meta(meta)
        if worth is not None:
            group["tokens"] += worth.input_tokens + worth.output_tokens
            group["cost"] += worth.cost or 0.0
        if isinstance(env[2], (int, float)):
            group["oldest"] = env[2] if group["oldest"] is None else min(group["oldest"], env[2])
    checks = _checks(backend, namespace, functions)
    table = Table(title=f"memollm cache at {name}")
    columns = ["namespace", "function", "entries", "bytes", "tokens per round", "$ per round", "oldest"]
    if checks:
        columns += ["checks", "wrong"]
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("namespace", "function") else "right", overflow="fold"
        )
    now = time.time()
    for (space, function), group in sorted(groups.items()):
        oldest = "" if group["oldest"] is None else _age(now - group["oldest"])
        row = [space, function, f"{group['entries']:,}", f"{group['bytes']:,}", f"{group['tokens']:,}",
               money(group["cost"]), oldest]  # fmt: skip
        if checks:
            seen, wrong = checks.get((space, function), (0, 0))
            row += [f"{seen:,}", f"{wrong:,}"]
        table.add_row(*row)
    console = make_console()
    console.print(table)
    total = sum(g["entries"] for g in groups.values())
    tokens = sum(g["tokens"] for g in groups.values())
    cost = sum(g["cost"] for g in groups.values())
    noun = "entry" if total == 1 else "entries"
    console.print(f"{total:,} {noun}; one hit on each would save {tokens:,} tokens and {money(cost)}.")
    if unreadable:
        console.print(f"{unreadable:,} entries could not be read (another version, or not memollm's)")
    index = _semantic_index(backend)
    if index is not None:
        console.print(index)


def _semantic_index(backend: Any) -> str | None:
    """Where a Redis server keeps semantic vectors (None for other stores)."""
    from ..backends.redis import RedisBackend

    if not isinstance(backend, RedisBackend):
        return None
    from ..backends.redis_vectors import indexed_prompts, supports_vector_search

    try:
        if not supports_vector_search(backend):
            return "semantic index: in each process (this server has no vector search), fed by a shared log"
        count = indexed_prompts(backend)
    except Exception as exc:  # noqa: BLE001 - a report line, never a failure of the command
        return f"semantic index: unknown ({type(exc).__name__})"
    return f"semantic index: in this Redis server (vector search), {count:,} prompts indexed"


def _checks(
    backend: Any, namespace: str | None, functions: dict[str, tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """Error-bounded semantic hits: comparisons made and found wrong, per function (partitions summed)."""
    from ..semantic.bounded import Evidence

    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for key, counts in backend.scan_counts(f"{namespace}:" if namespace else ""):
        group = functions.get(":".join(key.split(":", 2)[:2]))
        if group is None:
            continue
        seen, wrong = Evidence.from_counts(counts).at_or_above(0.0)
        before = totals.get(group, (0, 0))
        totals[group] = (before[0] + seen, before[1] + wrong)
    return totals


@main.command()
@_store_options
@click.option("--namespace", default=None, help="only this namespace (default: every memollm entry)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def clear(redis_url: str | None, sqlite_path: str | None, namespace: str | None, yes: bool) -> None:
    """Remove cached entries (and their semantic vectors) from a shared cache."""
    backend, name = open_store(redis_url, sqlite_path)
    what = f"namespace {namespace!r}" if namespace else "every memollm entry"
    if not yes:
        click.confirm(f"Remove {what} from {name}?", abort=True)
    removed = backend.clear(f"{namespace}:" if namespace else "")
    click.echo(f"removed {removed} entries from {name}")


@main.command()
@_store_options
@click.argument("key")
@click.option("--max-chars", type=click.IntRange(min=80), default=4000, show_default=True)
def inspect(redis_url: str | None, sqlite_path: str | None, key: str, max_chars: int) -> None:
    """Show one entry: its function, times, tokens and value (KEY as from fn.cache.key_for(...))."""
    from ..codec import KIND_STREAM

    backend, name = open_store(redis_url, sqlite_path)
    tried = _as_stored(backend, key.strip())
    data = None
    for candidate in tried:
        data = backend.get(candidate)
        if data is not None:
            key = candidate
            break
    if data is None:
        looked = " or ".join(repr(getattr(backend, "full_key", lambda k: k)(k)) for k in tried)
        raise click.ClickException(
            f"no entry {looked} in {name} (keys look like 'namespace:function:call', as from "
            "fn.cache.key_for(...); Redis shows them with its prefix, which may be included)"
        )
    env = _describe(data)
    if env is None:
        raise click.ClickException(f"entry {key!r} is not a readable memollm entry ({len(data)} bytes)")
    _, kind, created, expires, meta, value = env
    now = time.time()
    click.echo(f"key       {key}")
    click.echo(f"function  {meta.get('f', '?') if isinstance(meta, dict) else '?'}")
    click.echo(f"kind      {'stream (chunks)' if kind == KIND_STREAM else 'value'}")
    click.echo(f"size      {len(data):,} bytes")
    click.echo(f"created   {_when(created)} ({_age(now - created)} ago)")
    if expires is None:
        click.echo("expires   never")
    else:
        left = expires - now
        click.echo(f"expires   {_when(expires)} ({'in ' + _age(left) if left > 0 else 'expired'})")
    usage = meta.get("u") if isinstance(meta, dict) else None
    if isinstance(usage, list) and len(usage) == 5:
        tin, tout, estimated, model, seconds = usage
        note = " (estimated)" if estimated else ""
        click.echo(f"tokens    {tin} in, {tout} out{note}; model {model or '?'}; call took {seconds:.3f} s")
    text = json.dumps(value, ensure_ascii=False, indent=2, default=repr)
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n... ({len(text) - max_chars:,} more characters)"
    click.echo("value")
    click.echo(text)


def _as_stored(backend: Any, key: str) -> list[str]:
    """The key as given, and without the Redis prefix when it carries one (as Redis shows keys)."""
    prefix = getattr(backend, "prefix", None)
    if isinstance(prefix, str) and key.startswith(prefix + ":"):
        return [key[len(prefix) + 1 :], key]
    return [key]


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
