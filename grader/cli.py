"""``python -m grader``: the command line of the grader.

Subcommands:
    data     provision real MNIST into the cache (or check a given folder) and print where it is
    assign   regenerate student_template/mlp.py from reference/mlp.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.dataset import DataError
from grader.dataset.mnist import find_idx_dir, provision, read_verified
from grader.template import SolutionBlockError, write_template


def _data(args: argparse.Namespace) -> int:
    if args.mnist_dir:
        folder = find_idx_dir(Path(args.mnist_dir))
        read_verified(folder)
    else:
        folder = provision(Path(args.cache_dir) if args.cache_dir else None)
    print(f"MNIST verified in {folder}")
    return 0


def _assign(args: argparse.Namespace) -> int:
    reference, template = Path(args.reference), Path(args.out)
    if not reference.is_file():
        raise DataError(f"{reference}: no such file (run from the repository root or pass --reference)")
    changed = write_template(reference, template)
    print(f"{template}: {'written' if changed else 'already up to date'} (from {reference})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="provision real MNIST and print where it is")
    data.add_argument("--mnist-dir", help="verify this folder of IDX files instead of the cache")
    data.add_argument("--cache-dir", help="cache folder (default: $MLP_GRADER_CACHE or ~/.cache/mlp-grader)")
    data.set_defaults(run=_data)

    assign = commands.add_parser("assign", help="generate the student template from the reference")
    assign.add_argument("--reference", default="reference/mlp.py")
    assign.add_argument("--out", default="student_template/mlp.py")
    assign.set_defaults(run=_assign)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DataError, SolutionBlockError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
