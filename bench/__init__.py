"""The workers benchmark: `python -m bench` from the repository root.

It creates a database of its own (a `workers_bench` database on the
PostgreSQL server, a temporary SQLite file), measures, prints a table and
appends the run to bench/results.md and bench/results.jsonl.
"""
