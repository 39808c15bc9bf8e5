"""``memollm serve``: a caching proxy in front of an OpenAI-compatible API."""

from __future__ import annotations

import click

from .._install import extra as _extra
from ..policy import Semantic
from ._app import main


@main.command()
@click.option(
    "--upstream",
    required=True,
    help="the OpenAI-compatible API to forward to: https://api.openai.com or https://api.openai.com/v1 "
    "(both work; a client's /v1/... path is not doubled)",
)
@click.option("--redis", "redis_url", default=None, help="share the cache through this Redis URL")
@click.option(
    "--sqlite",
    "sqlite_path",
    default=None,
    help="persistent cache file (default: proxy.db in the per-user cache folder, ~/.cache/memollm)",
)
@click.option(
    "--semantic",
    default=None,
    metavar="true|THRESHOLD",
    help="semantic hits: 'true' for the recommended threshold, or a cosine threshold in [0.5, 1]",
)
@click.option(
    "--semantic-max-error",
    type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
    default=None,
    help="semantic hits whose error rate, learned on live traffic, stays under this share (e.g. 0.02)",
)
@click.option(
    "--ttl", type=click.FloatRange(min=1), default=3600, show_default=True, help="seconds answers live"
)
@click.option(
    "--upstream-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="seconds the upstream may stay silent before or while answering; then the client gets 502",
)
@click.option("--tenant-header", default=None, help="scope entries by this header (default: Authorization)")
@click.option("--max-body", type=click.IntRange(min=1024), default=4 * 1024 * 1024, show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="for memollm, uvicorn and the HTTP client (API keys are never logged at any level)",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
def serve(  # noqa: PLR0917 - click passes every option
    upstream: str,
    redis_url: str | None,
    sqlite_path: str | None,
    semantic: str | None,
    semantic_max_error: float | None,
    ttl: float,
    upstream_timeout: float,
    tenant_header: str | None,
    max_body: int,
    log_level: str,
    host: str,
    port: int,
) -> None:
    """Run a caching proxy in front of an OpenAI-compatible API.

    Runs on memory + SQLite with no Redis; --redis shares answers between proxies.
    Upstream keys: MEMOLLM_API_KEYS (comma-separated) replaces clients' own keys.
    """
    import gc
    import logging
    import os

    from ..backends.redis import redact
    from ..policy import Policy
    from ._checks import port_problem

    try:
        import uvicorn

        from ..asgi.proxy import build_app
    except ImportError as exc:
        raise click.ClickException(f"serve needs the server extra: {_extra('server')} ({exc})") from None
    if not upstream.startswith(("http://", "https://")):
        raise click.ClickException(f"--upstream must be an http:// or https:// URL, got {upstream!r}")
    busy = port_problem(host, port)
    if busy is not None:
        raise click.ClickException(busy)
    tiers, sqlite_path, unreachable = _tiers(redis_url, sqlite_path)
    keys = None
    if os.environ.get("MEMOLLM_API_KEYS"):
        from ..resilience.keypool import KeyPool

        keys = KeyPool.from_env()
    policy = Policy(tiers=tuple(tiers), ttl=ttl, semantic=_semantic_option(semantic, semantic_max_error))
    app = build_app(
        upstream, policy=policy, tenant_header=tenant_header, max_body=max_body, keys=keys,
        timeout=upstream_timeout,
    )  # fmt: skip
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"memollm serving http://{host}:{port} -> {upstream} (tiers: {' > '.join(tiers)})")
    click.echo(f"answers kept in {sqlite_path}")
    if unreachable is not None:
        click.echo(f"--redis {redact(redis_url or '')} is unreachable ({unreachable}): answers go through "
                   f"memory and SQLite until it answers", err=True)  # fmt: skip
    # Everything imported so far lives as long as the process: frozen, full collections
    # skip it. Access logs would be dropped at this log level, yet uvicorn formats them;
    # forwarded-for headers would only feed those logs.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def _tiers(redis_url: str | None, sqlite_path: str | None) -> tuple[list[str], str, str | None]:
    """Register the proxy's tiers: (their names, the SQLite file, why Redis does not answer or None).

    A SQLite file that cannot be opened stops the start; a Redis that does not answer does not.
    """
    from .. import register_tier
    from ..backends import from_url
    from ..backends.sqlite import SQLiteBackend
    from ..paths import user_cache_dir
    from ._checks import redis_problem, sqlite_problem

    tiers = ["memory"]
    unreachable = None
    if redis_url:
        try:
            redis_tier = from_url(redis_url)
        except ValueError as exc:
            raise click.ClickException(f"--redis: {exc}") from None
        unreachable = redis_problem(redis_tier)
        register_tier("redis", redis_tier)
        tiers.append("redis")
    if sqlite_path is None:
        folder = user_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        sqlite_path = str(folder / "proxy.db")
    problem = sqlite_problem(sqlite_path)
    if problem is not None:
        raise click.ClickException(f"--sqlite: {problem}")
    register_tier("sqlite", SQLiteBackend(sqlite_path))
    tiers.append("sqlite")
    return tiers, sqlite_path, unreachable


def _semantic_option(text: str | None, max_error: float | None) -> bool | float | Semantic | None:
    if max_error is not None:
        floor = None if text is None else _semantic_option(text, None)
        return Semantic(max_error=max_error, threshold=floor if isinstance(floor, float) else None)
    if text is None:
        return None
    if text.lower() in ("true", "default", "on"):
        return True
    try:
        value = float(text)
    except ValueError:
        raise click.BadParameter(
            f"expected 'true' or a number, got {text!r}", param_hint="--semantic"
        ) from None
    if not 0.5 <= value <= 1.0:
        raise click.BadParameter(f"a cosine threshold in [0.5, 1], got {value}", param_hint="--semantic")
    return value
