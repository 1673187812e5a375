"""Meterline: shared contracts (usage record, span names, storage layout, config) and the CLI.

Every stage (gateway, collector, analytics, dashboards) imports its contracts from here and
never redefines them.
"""

__version__ = "0.1.0"
