"""``cnnlab summary``, ``cnnlab check`` and ``cnnlab models``: understand a network before training.

    cnnlab summary examples/book-cnn.yaml
    cnnlab summary alexnet-2012 --lang pt
    cnnlab summary vgg16 --format json --batch 32
    cnnlab check my-net.yaml            # exit 0 when it can be built, 2 with every problem listed
    cnnlab models

Registration imports nothing heavy; the handlers import the (torch-free) analysis on use.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cnnlab.cli.help import LANG_HELP, HelpFormatter
from cnnlab.cli.options import count, whole

FORMATS = ("table", "json", "markdown", "csv")


def register(sub: Any) -> None:
    fmt = HelpFormatter
    p = sub.add_parser(
        "summary", formatter_class=fmt,
        help="explain a network layer by layer: shapes, parameters with formulas, MACs, receptive field, memory",
        description="Explain a network without running it. NET is a .yaml/.json spec or a bundled name "
        "(see `cnnlab models`). Layer kinds and their defaults are documented in cnnlab/spec.py and the README.",
    )
    p.add_argument("net", metavar="NET", help="spec file or bundled network name")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format")
    p.add_argument("--batch", type=count, default=1, help="batch size for the training-memory estimate")
    p.add_argument("--lang", default=None, help=LANG_HELP)
    p.add_argument("--width", type=whole(20, 10_000), default=None, help="table width in characters (default: terminal)")
    p.add_argument("--input", default=None, metavar="C,H,W",
                   help="analyse for another input size, e.g. 3,64,64 (default: the spec's input)")
    p.add_argument("--init-from", default=None, metavar="SOURCE",
                   help="also show which layers load weights from SOURCE (run folder, weights file, resnet18:imagenet) "
                        "and which are frozen while fine-tuning, with trainable vs frozen parameters")
    p.add_argument("--freeze-epochs", type=whole(0), default=1, help="with --init-from: epochs the body stays frozen")
    p.set_defaults(func=run_summary)

    c = sub.add_parser(
        "check", formatter_class=fmt, help="validate specs: list every problem (exit 2) or say they are fine",
        description="Validate one or more specs before anything runs; every problem is listed with its layer "
        "index and YAML line.",
    )
    c.add_argument("nets", metavar="NET", nargs="+", help="spec files or bundled names")
    c.add_argument("--lang", default=None, help=LANG_HELP)
    c.set_defaults(func=run_check)

    m = sub.add_parser("models", formatter_class=fmt, help="list the bundled classic networks with their counts")
    m.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    m.add_argument("--lang", default=None, help=LANG_HELP)
    m.set_defaults(func=run_models)


def run_summary(args: argparse.Namespace) -> int:
    from cnnlab.analysis import analyze
    from cnnlab.analysis.render import print_summary, render
    from cnnlab.i18n import resolve_lang

    if args.batch < 1:
        from cnnlab.errors import CnnlabError

        raise CnnlabError(f"--batch must be a positive integer; received {args.batch}")
    lang = resolve_lang(args.lang)
    spec: Any = args.net
    if args.input:
        import dataclasses

        from cnnlab.spec import load_spec

        spec = dataclasses.replace(load_spec(args.net, lang), input=_input_size(args.input))
    a = analyze(spec, batch=args.batch, lang=lang)
    if args.format == "table":
        print_summary(a, width=args.width)
    else:
        text = render(a, args.format)
        if args.format == "json" and args.init_from:  # one JSON document: the analysis plus "init_from"
            from cnnlab.cli.transfer_view import with_init_json

            text = with_init_json(text, spec, args.init_from, args.freeze_epochs)
        sys.stdout.write(text)
        if args.format == "json":
            sys.stdout.write("\n")
    if args.init_from and args.format != "json":
        from cnnlab.cli.transfer_view import print_init

        print_init(spec, args.init_from, args.freeze_epochs, lang)
    return 0


def _input_size(text: str) -> tuple[int, int, int]:
    from cnnlab.errors import CnnlabError

    parts = text.replace("x", ",").replace("×", ",").split(",")
    try:
        c, h, w = (int(p) for p in parts)
    except ValueError:
        raise CnnlabError(f"--input must be C,H,W with three positive integers, e.g. 3,64,64; received {text!r}") from None
    if min(c, h, w) < 1:
        raise CnnlabError(f"--input must be C,H,W with three positive integers, e.g. 3,64,64; received {text!r}")
    return c, h, w


def run_check(args: argparse.Namespace) -> int:
    from cnnlab.analysis import analyze
    from cnnlab.errors import CnnlabError
    from cnnlab.i18n import integer, resolve_lang, tr

    lang = resolve_lang(args.lang)
    failed = 0
    for net in args.nets:
        try:
            a = analyze(net, lang=lang)
        except CnnlabError as exc:
            failed += 1
            print(f"{tr('analysis.check.fail', lang, net=net)}\n{exc}", file=sys.stderr)
            continue
        print(tr("analysis.check.ok", lang, net=net, layers=len(a.layers), params=integer(a.total_params, lang),
                 shape=a.output_shape))
        for w in a.warnings:
            print("  " + tr("analysis.warning", lang, text=w))
    return 2 if failed else 0


def run_models(args: argparse.Namespace) -> int:
    import json

    from cnnlab import zoo
    from cnnlab.analysis import analyze
    from cnnlab.analysis.render import human_count
    from cnnlab.i18n import integer, resolve_lang, tr

    lang = resolve_lang(args.lang)
    rows: list[dict[str, Any]] = []
    for entry in zoo.list_models():
        a = analyze(entry.name, lang=lang)
        rows.append({"name": entry.name, "input": list(a.input_shape), "params": a.total_params,
                     "trainable_params": a.trainable_params, "macs": a.total_macs, "description": entry.description})
    if args.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    from cnnlab.analysis.render_text import draw_table, paint, terminal_width, use_color

    color = use_color()
    headers = [tr(f"analysis.models.{c}", lang) for c in ("name", "input", "params", "trainable", "macs", "description")]
    cells = [[r["name"], "×".join(map(str, r["input"])), integer(r["params"], lang), integer(r["trainable_params"], lang),
              human_count(r["macs"], lang), r["description"]] for r in rows]
    print(paint(tr("analysis.models.title", lang), "bold", color) + "\n")
    print(draw_table(headers, cells, align="lrrrrl", styles=["cyan", None, "green", "green", "magenta", None],
                     width=terminal_width(), color=color))
    return 0
