"""Helpers for bench/deid_bench.py (data generation, tool runners, scoring)."""
