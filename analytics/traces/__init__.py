"""Traces for engineers: find a trace, read it as a waterfall, query the ledger in SQL.

One job per module: `ledger.py` opens the catalog's views (`usage`, `spans`, `quarantine`) on a
sandboxed in-memory DuckDB connection; `search.py` finds traces by agent, model, status, time,
latency, cost, trace id or request id; `waterfall.py` reads one trace (every span with its
attributes, in start order and parent-child depth, the usage records joined on
trace_id/span_id); `read_only.py` runs an engineer's SQL, refusing anything but a query;
`render.py` prints all three as a table, JSON or CSV and a trace as a terminal waterfall.
The CLI (`meterline traces|trace|sql`) and the dashboard's Traces page both call these.
"""
