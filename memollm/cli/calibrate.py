"""``memollm calibrate``: pick a semantic threshold from labeled pairs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from .._install import extra as _extra
from ._app import main


def _read_pairs(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise click.ClickException(f"{path}:{number}: not JSON ({exc})") from None
        if not (isinstance(row, dict) and isinstance(row.get("q1"), str) and isinstance(row.get("q2"), str)
                and row.get("label") in (0, 1)):  # fmt: skip
            raise click.ClickException(f'{path}:{number}: expected {{"q1": str, "q2": str, "label": 0 or 1}}')
        rows.append(row)
    if not rows:
        raise click.ClickException(f"{path} holds no pairs")
    return rows


def _scores(pred: list[bool], labels: list[bool]) -> tuple[float, float, float]:
    tp = sum(p and y for p, y in zip(pred, labels, strict=True))
    served = sum(pred)
    positives = sum(labels)
    precision = tp / served if served else math.nan
    recall = tp / positives if positives else math.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@main.command()
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model", default=None, help="fastembed model name (default: MEMOLLM_EMBED_MODEL or all-MiniLM-L6-v2)"
)
@click.option("--model-path", default=None, help="a local model folder (default: MEMOLLM_EMBED_MODEL_PATH)")
@click.option("--target-precision", default=0.99, show_default=True, type=click.FloatRange(0, 1))
@click.option("--from", "start", default=0.80, show_default=True, type=float, help="lowest threshold shown")
@click.option("--step", default=0.01, show_default=True, type=click.FloatRange(0.001, 0.5))
def calibrate(  # noqa: PLR0917 - click passes every option positionally by name
    pairs: Path, model: str | None, model_path: str | None, target_precision: float, start: float, step: float
) -> None:
    """Pick a semantic threshold from labeled pairs: lines of {"q1", "q2", "label": 0|1}.

    label 1 means serving q1's answer for q2 is correct. Prints precision, recall and F1
    per cosine threshold from --from up, with and without the verifier, and the first of
    them that reaches the target precision.
    """
    from rich.progress import Progress
    from rich.table import Table

    from ._console import console as make_console

    try:
        from ..semantic.embedder import EmbedderUnavailable, FastEmbedder
        from ..semantic.learned import learned_verifier
    except ImportError as exc:
        hint = f"calibrate needs the semantic extra: {_extra('semantic')} ({exc})"
        raise click.ClickException(hint) from None
    rows = _read_pairs(pairs)
    console = make_console()
    embedder = FastEmbedder(model, path=model_path, background=False)
    texts = sorted({r["q1"] for r in rows} | {r["q2"] for r in rows})
    vectors: dict[str, Any] = {}
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"embedding {len(texts)} texts", total=len(texts))
            for i in range(0, len(texts), 64):
                chunk = texts[i : i + 64]
                for text, vector in zip(chunk, embedder.embed(chunk), strict=True):
                    vectors[text] = vector
                progress.advance(task, len(chunk))
    except EmbedderUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    cosines = [float(vectors[r["q1"]] @ vectors[r["q2"]]) for r in rows]
    labels = [bool(r["label"]) for r in rows]
    verified = [learned_verifier(r["q2"], r["q1"], c) for r, c in zip(rows, cosines, strict=True)]
    table = Table(
        title=f"{pairs.name}: {len(rows)} pairs, {sum(labels)} positive ({embedder.model})",
        caption="P, R, F1: precision, recall, F1 of cosine alone; +v: with the verifier",
    )
    for column in ("threshold", "P", "R", "F1", "P+v", "R+v", "F1+v"):
        table.add_column(column, justify="right", overflow="fold")
    best: dict[str, float | None] = {"cosine": None, "verified": None}
    steps = int((0.995 - start) / step + 1e-9) + 1
    for n in range(steps):
        t = round(start + n * step, 4)
        plain = _scores([c >= t for c in cosines], labels)
        checked = _scores([c >= t and v for c, v in zip(cosines, verified, strict=True)], labels)
        for name, result in (("cosine", plain), ("verified", checked)):
            if best[name] is None and result[0] >= target_precision:
                best[name] = t
        table.add_row(f"{t:.3f}", *(f"{x:.3f}" for x in (*plain, *checked)))
    console.print(table)
    for name in ("cosine", "verified"):
        found = best[name]
        if found is None:
            console.print(f"{name}: no threshold reaches precision {target_precision}")
        else:
            console.print(
                f"{name}: from {start:.2f} up, the first threshold reaching precision "
                f"{target_precision} is {found:.3f}"
            )
