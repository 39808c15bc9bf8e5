"""Exporters of memollm's stats and events to monitoring systems.

:mod:`memollm.metrics.prometheus` needs the ``prometheus`` extra
(``pip install 'memollm[prometheus]'``) and is imported only when used.
"""
