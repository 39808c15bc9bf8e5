"""``python -m memollm``: the command line, as ``memollm``."""

from .cli import main

main(prog_name="memollm")
