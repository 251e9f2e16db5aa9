"""Benchmarks: commands that print measured numbers (never run as timing assertions)."""


def print_table(rows: list[tuple[str, str]]) -> None:
    """One ``name  value`` line per row, the names padded to one column."""
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
