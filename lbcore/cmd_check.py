"""``lbcore check -f FILE [-f FILE...]``: validate a configuration, exit 0 (valid) or 1.

Made for Ansible's ``validate:`` and for operators used to ``haproxy -c -f FILE``:
``-c`` is accepted (and implied), ``-q`` silences the success line, files and
directories may be given with ``-f`` or as plain arguments. Errors go to stderr as
``FILE:LINE: message``, one per line; warnings too, prefixed ``warning:``.
"""

from __future__ import annotations

import argparse
import sys

from lbcore.config import ConfigErrors, load_config


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lbcore check", description="Validate lbcore (HAProxy-dialect) configuration files."
    )
    parser.add_argument(
        "-f",
        dest="files",
        action="append",
        default=[],
        metavar="FILE",
        help="configuration file or directory (repeatable; read in order)",
    )
    parser.add_argument("-c", action="store_true", help="check only (the default; as in haproxy)")
    parser.add_argument("-q", action="store_true", help="print nothing when the config is valid")
    parser.add_argument("-V", action="store_true", help="verbose (accepted for haproxy -V)")
    parser.add_argument("paths", nargs="*", metavar="FILE")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    try:
        args = _args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors; check promises 0/1
        return 0 if exc.code == 0 else 1
    paths = [*args.files, *args.paths]
    if not paths:
        print("lbcore check: no configuration file given (use -f FILE)", file=sys.stderr)
        return 1
    try:
        config, warnings = load_config(paths)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(str(error), file=sys.stderr)
        print(f"lbcore check: {len(exc.errors)} error(s) found", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not args.q:
        proxies = len(config.proxies)
        print(f"Configuration file is valid ({proxies} proxies)")
    return 0
