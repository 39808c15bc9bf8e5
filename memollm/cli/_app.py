"""The ``memollm`` command group; each command lives in its own module."""

from __future__ import annotations

import click

from .. import __version__

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="memollm", message="%(prog)s %(version)s")
def main() -> None:
    """memollm: never pay twice for the same LLM answer."""
