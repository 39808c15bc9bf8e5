"""Exporters of memollm's stats and events to monitoring systems.

:mod:`memollm.metrics.prometheus` needs the ``prometheus`` extra
(``pip install 'memollm-cache[prometheus]'``) and is imported only when used.
"""
