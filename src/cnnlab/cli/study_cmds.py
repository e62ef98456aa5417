"""``cnnlab study``: built-in paper studies (a thin shell over ``cnnlab.studies``).

    cnnlab study list
    cnnlab study increase-batch --data mnist --quick --workers 2
    cnnlab study page studies/increase-batch-quick --lang pt      # rewrite study.html in Portuguese

Registration imports neither torch nor optuna.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.help import LANG_HELP, HelpFormatter
from cnnlab.cli.options import whole


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "study", help="paper studies: check a paper's claim with a few runs (increase-batch, batch-vs-lr, ...)",
        description="Run a built-in study: the paper's setting as closely as a laptop allows, each arm over "
                    "several seeds (a sweep per arm, in STUDY/arms/), every run measured on the test split, "
                    "then STUDY/study.html (claim beside our measurement, plots, verdict) and STUDY/study.json. "
                    "`cnnlab study list` shows the studies and their sizes.",
        formatter_class=HelpFormatter)
    p.add_argument("target", nargs="+", metavar="NAME | list | page STUDY",
                   help="a study name, `list`, or `page STUDY` (rewrite the page from study.json)")
    p.add_argument("--data", help="mnist (measured on its own test set) or a 10-class image folder "
                                       "(its test/ sub-folder, else 10 %% held out)")
    p.add_argument("--quick", action="store_true", help="the quick size (about 5 minutes on 2 CPU cores)")
    p.add_argument("--out", help="study folder (default: studies/<name>-<quick|full>)")
    p.add_argument("--seeds", type=whole(1, 20), help="seeds per arm (default: the study's, see `cnnlab study list`)")
    p.add_argument("--workers", type=whole(1, 64), default=1, help="runs at once on this machine (the cores are split)")
    p.add_argument("--lang", default=None, help=LANG_HELP)
    p.add_argument("--quiet", action="store_true", help="print nothing (read study.html / study.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.errors import CnnlabError
    from cnnlab.i18n import resolve_lang

    lang = resolve_lang(args.lang)
    target = list(args.target)
    if target == ["list"]:
        print(list_text(lang))
        return 0
    if target[0] == "page":
        if len(target) != 2:
            raise CnnlabError("usage: cnnlab study page STUDY (one study folder)")
        from cnnlab.studies import write_study_page

        print(write_study_page(target[1], lang))
        return 0
    if len(target) != 1:
        raise CnnlabError("give one study: cnnlab study NAME --data mnist (see `cnnlab study list`)")
    from cnnlab.studies import get_study

    study = get_study(target[0])  # an unknown name fails before --data is asked for
    if not args.data:
        raise CnnlabError(f"no data given; pass --data mnist (e.g. cnnlab study {study.name} --data mnist --quick)")
    from cnnlab.studies import run_study

    run_study(study, args.data, quick=args.quick, out=args.out, seeds=args.seeds, workers=args.workers, lang=lang,
              quiet=args.quiet)
    return 0


def list_text(lang: str) -> str:
    from cnnlab.i18n import integer, tr
    from cnnlab.studies import STUDIES

    lines = [tr("study.list.head", lang), ""]
    for s in STUDIES.values():
        q, f = s.plan("quick"), s.plan("full")
        sq, sf = s.sizes["quick"], s.sizes["full"]
        lines += [f"{s.name}  ({s.short})", f"  {s.paper}", f"  {tr(f'study.claim.{s.name}', lang)}",
                  "  " + tr("study.list.sizes", lang,
                            qimages=integer(sq.limit, lang) if sq.limit else tr("study.all_images", lang),
                            qepochs=sq.epochs, qseeds=sq.seeds, qruns=q.trials(), qmin=f"{sq.minutes:g}",
                            fimages=integer(sf.limit, lang) if sf.limit else tr("study.all_images", lang),
                            fepochs=sf.epochs, fseeds=sf.seeds, fruns=f.trials(), fmin=f"{sf.minutes:g}"), ""]
    return "\n".join(lines).rstrip()
