"""``python -m memollm.cli``."""

from . import main

main()
