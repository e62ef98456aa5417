"""``cnnlab data PATH|NAME``: inspect a dataset before training on it.

    cnnlab data ../shared/data/cats_vs_dogs
    CNNLAB_DATA=../shared/data cnnlab data mnist --format json
    cnnlab data sample --lang pt
    cnnlab data --clear-cache

Exit codes: 0 fine; 2 for a structural problem (missing path, no classes, one class), or when
``--strict`` is given and files could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cnnlab.cli.help import LANG_HELP, HelpFormatter
from cnnlab.cli.options import fraction, seed, whole
from cnnlab.data import defaults


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "data",
        help="inspect a dataset: classes and counts per split, sizes, modes, bad files, duplicates",
        description="Inspect a dataset (an image folder, IDX/CIFAR files, a CSV of path,label, or a name: "
                    "sample, mnist, fashion-mnist, cifar10, cifar100 looked up in $CNNLAB_DATA).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("source", nargs="?", help="folder, file or dataset name")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.add_argument("--val-split", type=fraction, default=defaults.VAL_SPLIT, help="validation fraction drawn when the source has no val split")
    p.add_argument("--test-split", type=fraction, default=defaults.TEST_SPLIT, help="test fraction drawn when the source has no test split")
    p.add_argument("--seed", type=seed, default=defaults.SEED, help="seed of the stratified split")
    p.add_argument("--strict", action="store_true", help="exit 2 when any file cannot be read")
    p.add_argument("--no-download", action="store_true", help="never download a named dataset")
    p.add_argument("--show", type=whole(0), default=20, help="skipped files and duplicates listed in text output")
    p.add_argument("--lang", default=None, help=LANG_HELP)
    p.add_argument("--clear-cache", action="store_true",
                   help="delete the decoded-image cache ($CNNLAB_CACHE or ~/.cache/cnnlab/cache) and exit")
    p.set_defaults(func=run_data)


def run_data(args: argparse.Namespace) -> int:
    from cnnlab.data.inspect import inspect_data
    from cnnlab.data.inspect_render import render_text
    from cnnlab.i18n import resolve_lang, tr

    lang = resolve_lang(args.lang)
    if args.clear_cache:
        from cnnlab.data.cache import clear_cache, default_cache_dir

        files, nbytes = clear_cache()
        print(f"removed {files:,} cache file(s), {nbytes / 2**20:,.1f} MB, from {default_cache_dir()}")
        return 0
    if not args.source:
        from cnnlab.errors import DataError

        raise DataError("cnnlab data needs a SOURCE: a folder, a file, or a dataset name (sample, mnist, ...)")
    from cnnlab.data.notices import sample_notice

    for line in sample_notice(args.source, args.val_split,
                              None if args.test_split == defaults.TEST_SPLIT else args.test_split,
                              None if args.seed == defaults.SEED else args.seed, lang=lang):
        print(line, file=sys.stderr)
    report = inspect_data(args.source, val_split=args.val_split, test_split=args.test_split, seed=args.seed,
                          progress=args.format == "text", download=not args.no_download)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(render_text(report, lang, show=max(0, args.show)))
    if args.strict and report.skipped:
        first = "{}: {}".format(*report.skipped[0])
        print(f"error: {tr('data.strict.failed', lang, n=len(report.skipped), first=first)}", file=sys.stderr)
        return 2
    return 0
