"""The ``memollm`` command group; each command lives in its own module."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group()
@click.version_option(package_name="memollm")
def main() -> None:
    """memollm: never pay twice for the same LLM answer."""
