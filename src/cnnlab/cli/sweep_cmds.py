"""``cnnlab sweep``: hyperparameter studies (a thin shell over ``cnnlab.sweep``).

    cnnlab sweep lenet5 --data mnist -p lr=0.001,0.003,0.01 -p batch_size=32,64 -p epochs=2 --workers 2
    cnnlab sweep my.yaml --data ./photos -p lr=log:1e-4..1e-1 --trials 20 --prune
    cnnlab sweep lenet5 --data mnist -p 'batch_schedule=none|10:5,20:5' -p epochs=30   # Smith et al. 2017
    cnnlab sweep --join sweeps/lenet5                       # resume a killed sweep / add workers
    cnnlab sweep --join lenet5 --storage postgresql://me:pw@db/cnn   # a worker on another machine
    cnnlab sweep report sweeps/lenet5 --x lr --y batch_size

Registration imports neither torch nor optuna.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.help import LANG_HELP, HelpFormatter
from cnnlab.cli.options import count, fraction, seed, whole
from cnnlab.data import defaults

EPILOG = """\
values (-p NAME=VALUES, repeatable; NAME is a training option or layers.<i>.<key>):
  lr=0.001,0.01        a list (a grid axis)          lr=log:1e-4..1e-1     a log range (random/tpe)
  lr=log:1e-4..1e-1:4  4 log-spaced grid points     dropout=0..0.5:3      3 evenly spaced points
  epochs=int:1..3      1, 2, 3                       epochs=2              fixed for every trial
  lr=0.001|0.01        | between values instead of , (then commas belong to the values)
values that hold commas: batch_schedule and lr_steps (EPOCH:FACTOR,..., as for cnnlab train) take | between
values, `none` is the option off; quote the whole -p for the shell:
  -p 'batch_schedule=none|10:5,20:5|5:2,10:2,15:2'     3 values (Smith et al.: grow the batch ...)
  -p 'lr_steps=10:0.2,20:0.2|10:0.1' -p schedule=step  (... or decay the lr)
  -p batch_schedule=10:5,20:5                          ONE value: fixed for every trial
  -p "batch_schedule='10:5,20:5',none"                 quoted values keep their commas (Hydra style)
each schedule is read by the trainer's parser, and every combination of training options is tried,
before any trial runs
in a spec file: - conv: {filters: {sweep: [16, 32]}, kernel: 5}
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep", help="hyperparameter study: many runs, ranked on validation (Optuna; SQLite or PostgreSQL)",
        description="Run a study over training options and spec choices. Each trial is an ordinary run folder "
                    "in SWEEP/trials/; the study lives in SWEEP/study.db (SQLite) or --storage URL. "
                    "`cnnlab sweep report SWEEP` writes SWEEP/report.html.",
        formatter_class=_Formatter, epilog=EPILOG)
    p.add_argument("target", nargs="*", metavar="SPEC | report SWEEP",
                   help="the network spec (file or bundled name), or `report SWEEP`")
    p.add_argument("--data", help="training data (folder, mnist, cifar10, sample...)")
    p.add_argument("-p", "--param", "--set", dest="params", action="append", default=[], metavar="NAME=VALUES",
                   help="an option to vary (or fix), see below; values that hold commas (batch_schedule, "
                        "lr_steps) are separated by |")
    p.add_argument("--config", help="YAML file of base training options (as for `cnnlab train --config`)")
    p.add_argument("--out", help="sweep folder (default: sweeps/<spec name>)")
    p.add_argument("--storage", help="SQLAlchemy URL of the study database (default: sqlite in the sweep folder), "
                                     "e.g. postgresql://user:pw@host/db; or set CNNLAB_SWEEP_STORAGE")
    p.add_argument("--join", "--resume", dest="join", metavar="SWEEP",
                   help="add workers to an existing sweep (a killed one resumes; finished trials are never rerun)")
    p.add_argument("--workers", type=whole(1, 256), default=1, help="trials at once on this machine (the cores are split)")
    p.add_argument("--trials", type=count, help="number of trials (random/tpe; a grid runs every point)")
    p.add_argument("--sampler", choices=("grid", "random", "tpe"),
                   help="default: grid when every option is a list of values, else tpe")
    p.add_argument("--prune", action="store_true", help="stop trials below the median after an epoch (median pruner)")
    p.add_argument("--val-split", type=fraction, default=defaults.VAL_SPLIT, help="validation fraction (ranks the trials)")
    p.add_argument("--test-split", type=fraction, default=0.1,
                   help="held-out fraction, used once for the winner (named datasets use their test set)")
    p.add_argument("--limit", type=count, help="at most this many images per split (quick sweeps)")
    p.add_argument("--seed", type=seed, default=defaults.SEED, help="data split and weight initialisation seed (same for all trials)")
    p.add_argument("--x", help="report: heat map x option (default lr, or the first option)")
    p.add_argument("--y", help="report: heat map y option (default batch_size, or the second option)")
    p.add_argument("--lang", default=None, help=LANG_HELP)
    p.add_argument("--quiet", action="store_true", help="no table while the sweep runs")
    p.add_argument("--no-report", dest="report", action="store_false", help="do not write report.html at the end")
    p.add_argument("--dry-run", action="store_true", help="check the spec, data options and space; run nothing")
    p.set_defaults(func=run)


class _Formatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def run(args: argparse.Namespace) -> int:
    from cnnlab.errors import CnnlabError
    from cnnlab.i18n import resolve_lang

    lang = resolve_lang(args.lang)
    target = list(args.target)
    if target and target[0] == "report":
        if len(target) != 2:
            raise CnnlabError("usage: cnnlab sweep report SWEEP (one sweep folder)")
        return _report(target[1], args, lang)
    if args.join:
        if target:
            raise CnnlabError(f"--join {args.join} continues an existing sweep: drop {' '.join(target)} (its spec, "
                              "data and options are stored in the study)")
        from cnnlab.sweep import join_sweep

        result = join_sweep(args.join, storage=args.storage, workers=args.workers, lang=lang, quiet=args.quiet,
                            report=args.report)
        return 0 if result.finished else 130
    if len(target) != 1:
        raise CnnlabError("give one network spec: cnnlab sweep SPEC --data DATA -p lr=0.001,0.01 "
                          "(or `cnnlab sweep --join SWEEP`, `cnnlab sweep report SWEEP`)")
    if not args.data:
        raise CnnlabError("no training data given; pass --data (a folder, mnist, cifar10, sample...)")
    from cnnlab.sweep import run_sweep

    result = run_sweep(target[0], args.data, args.params, out=args.out, storage=args.storage, workers=args.workers,
                       trials=args.trials, sampler=args.sampler, prune=args.prune, config=args.config,
                       val_split=args.val_split, test_split=args.test_split, limit=args.limit, seed=args.seed,
                       lang=lang, quiet=args.quiet, dry_run=args.dry_run, report=args.report)
    return 0 if args.dry_run or getattr(result, "finished", True) else 130


def _report(folder: str, args: argparse.Namespace, lang: str) -> int:
    from cnnlab.i18n import tr
    from cnnlab.sweep import load_sweep, write_sweep_report

    result = load_sweep(folder, args.storage)
    paths = result.write_exports()
    page = write_sweep_report(result, lang=lang, x=args.x, y=args.y)
    print(tr("sweep.report", lang, path=page))
    print(tr("sweep.exports", lang, paths=", ".join(str(p) for p in paths)))
    return 0
