"""Exporters of memollm's stats and events to monitoring systems.

:mod:`memollm.metrics.prometheus` needs the ``prometheus`` extra
(the ``prometheus`` extra) and is imported only when used.
"""
