"""Benchmarks: commands that print measured numbers (never run as timing assertions)."""
