"""``cnnlab show filters|maps|cam|curves|confusion|mistakes`` and ``cnnlab report``: see what a run learned.

    cnnlab show filters runs/cats                    # RUN/figures/filters-layer0.png
    cnnlab show maps runs/cats photo.jpg --layer 3   # feature maps of one image
    cnnlab show cam runs/cats photo.jpg              # Grad-CAM overlay for the predicted class
    cnnlab show curves runs/cats                     # loss / accuracy per epoch
    cnnlab show confusion runs/cats --data ./cats_vs_dogs
    cnnlab show mistakes runs/cats                   # highest-loss validation images
    cnnlab report runs/cats --lang pt                # RUN/report.html, self-contained

Each ``show`` writes a PNG (``--out`` to choose) and prints its path. Registration imports neither
torch nor matplotlib; the handlers do, when they run. Thin shell over ``cnnlab.visualize`` and
``cnnlab.report``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnnlab.cli.help import LANG_HELP, HelpFormatter
from cnnlab.cli.options import whole
from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.i18n import resolve_lang
from cnnlab.inference.dataset import SPLITS

_FMT = HelpFormatter


def register(sub: argparse._SubParsersAction) -> None:
    show = sub.add_parser("show", formatter_class=_FMT, help="pictures of what a trained run learned (PNG)",
                          description="Draw one picture of a trained run and write it as PNG.")
    kinds = show.add_subparsers(dest="picture", metavar="PICTURE")
    show.set_defaults(func=lambda _args: _usage(show))
    _filters(kinds)
    _maps(kinds)
    _cam(kinds)
    _simple(kinds, "curves", "loss and accuracy per epoch (from metrics.jsonl)", cmd_curves, data=False)
    _simple(kinds, "confusion", "confusion matrix, in counts and normalised per true class", cmd_confusion)
    p = _simple(kinds, "mistakes", "grid of the highest-loss misclassified images", cmd_mistakes)
    p.add_argument("-n", type=whole(1, 1024), default=16, help="how many images")
    _report(sub)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _common(p: argparse.ArgumentParser, *, data: bool = False,
            out_help: str = "PNG file to write; when omitted: RUN/figures/<picture>.png") -> None:
    p.add_argument("run", help="run folder written by `cnnlab train`")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint to use")
    p.add_argument("--out", default=None, help=out_help)
    p.add_argument("--lang", default=None, help=LANG_HELP)
    if data:
        p.add_argument("--data", default=None, help="data source (folder, CSV, mnist, ...); when omitted: the run's own")
        p.add_argument("--split", choices=SPLITS, default="val",
                       help="which split of the data; val = the validation split training used")


def _filters(kinds: Any) -> None:
    p = kinds.add_parser("filters", formatter_class=_FMT, help="conv kernels as image grids",
                         description="The kernels of one conv layer: the first layer of an RGB network in colour, "
                         "deeper layers as one strip per filter (a slice per input channel).")
    _common(p)
    p.add_argument("--layer", type=whole(0), default=None, help="conv layer index (default: the first conv layer)")
    p.add_argument("--max", type=whole(1, 4096), default=64, dest="max_filters", help="show at most this many filters")
    p.set_defaults(func=cmd_filters)


def _maps(kinds: Any) -> None:
    p = kinds.add_parser("maps", formatter_class=_FMT, help="feature maps of one image",
                         description="Activations of one image after each chosen layer, captioned with the "
                         "layer's output shape (the same as in `cnnlab summary`).")
    _common(p)
    p.add_argument("image", help="image file")
    p.add_argument("--layer", type=whole(0), action="append", default=None,
                   help="layer index; repeat for several (default: every conv and pool layer)")
    p.add_argument("--channels", type=whole(1, 4096), default=16, help="channels shown per layer")
    p.set_defaults(func=cmd_maps)


def _cam(kinds: Any) -> None:
    p = kinds.add_parser("cam", formatter_class=_FMT, help="Grad-CAM heat map over an image",
                         description="Grad-CAM: where in the image the evidence for a class lies, computed at "
                         "a conv layer and overlaid on the input.")
    _common(p)
    p.add_argument("image", help="image file")
    p.add_argument("--class", dest="target", default=None, help="class name or index (default: the prediction)")
    p.add_argument("--layer", type=whole(0), default=None, help="conv layer index (default: the last conv layer)")
    p.set_defaults(func=cmd_cam)


def _simple(kinds: Any, name: str, text: str, func: Any, *, data: bool = True) -> argparse.ArgumentParser:
    p = kinds.add_parser(name, formatter_class=_FMT, help=text, description=text[0].upper() + text[1:] + ".")
    _common(p, data=data)
    p.set_defaults(func=func)
    return p


def _report(sub: Any) -> None:
    p = sub.add_parser("report", formatter_class=_FMT, help="self-contained HTML report of a run",
                       description="Write one HTML page about a run: the explained layer table, training "
                       "configuration and curves, metrics, confusion matrix, filters, feature maps, Grad-CAM "
                       "and the worst mistakes. Images and styles are inline; it opens from disk offline.")
    _common(p, data=True, out_help="HTML file to write; when omitted: RUN/report.html")
    p.add_argument("--force", action="store_true", help="report a run that is still training (its checkpoint as now)")
    p.set_defaults(func=cmd_report)


# ------------------------------------------------------------------ handlers


def _load(args: argparse.Namespace) -> Any:
    from cnnlab.train import load_run
    from cnnlab.utils.paths import check_output_file

    if getattr(args, "out", None):
        check_output_file(args.out, "--out")  # before the run and the data load

    return load_run(args.run, args.checkpoint)


def _out(args: argparse.Namespace, default_name: str) -> Path:
    return Path(args.out) if args.out else Path(args.run) / "figures" / default_name


def _done(path: Path) -> int:
    print(path)
    return 0


def cmd_filters(args: argparse.Namespace) -> int:
    from cnnlab.visualize import filter_grid, plot_filters, save_figure

    lang = resolve_lang(args.lang)
    run = _load(args)
    grid = filter_grid(run.model, args.layer, max_filters=args.max_filters)
    fig = plot_filters(grid, lang=lang, kind=run.analysis.layers[grid.layer].kind)
    return _done(save_figure(fig, _out(args, f"filters-layer{grid.layer}.png")))


def _image(run: Any, path: str) -> tuple[Any, Any]:
    """(uint8 (C, H, W) for display, normalised (C, H, W) tensor for the model) of one image file."""
    from cnnlab.data import load_image

    pixels = load_image(path, tuple(run.input_shape), run.resize)  # (C, H, W) uint8
    return pixels, run.preprocess(pixels[None])[0].cpu()  # (C, H, W) float32


def cmd_maps(args: argparse.Namespace) -> int:
    from cnnlab.visualize import feature_maps, plot_feature_maps, save_figure

    lang = resolve_lang(args.lang)
    run = _load(args)
    pixels, x = _image(run, args.image)
    kinds = [row.kind for row in run.analysis.layers]
    maps = feature_maps(run.model, x, args.layer, kinds=kinds)
    fig = plot_feature_maps(maps, pixels, max_channels=args.channels, lang=lang)
    return _done(save_figure(fig, _out(args, f"maps-{Path(args.image).stem}.png")))


def cmd_cam(args: argparse.Namespace) -> int:
    from cnnlab.visualize import grad_cam, plot_cam, save_figure

    lang = resolve_lang(args.lang)
    run = _load(args)
    target = None if args.target is None else class_index(args.target, list(run.classes))
    pixels, x = _image(run, args.image)
    cam = grad_cam(run.model, x, target, layer=args.layer)
    fig = plot_cam(pixels, cam, list(run.classes), lang=lang)
    suffix = "" if target is None else f"-{_safe(run.classes[target])}"
    return _done(save_figure(fig, _out(args, f"cam-{Path(args.image).stem}{suffix}.png")))


def _safe(name: str) -> str:
    """A class name usable in a file name."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(name))[:40]


def class_index(value: str, classes: list[str]) -> int:
    """A class given by name (exact) or by index."""
    if value in classes:
        return classes.index(value)
    if value.lstrip("-").isdigit():
        index = int(value)
        if 0 <= index < len(classes):
            return index
        raise CnnlabError(f"--class {index} is out of range: the run has {len(classes)} classes (0..{len(classes) - 1})")
    shown = ", ".join(classes[:20]) + (", …" if len(classes) > 20 else "")
    raise CnnlabError(f"--class {value!r} is not a class of this run{did_you_mean(value, classes)} "
                      f"(classes: {shown})")


def cmd_curves(args: argparse.Namespace) -> int:
    from cnnlab.visualize import curves_data, plot_curves, save_figure

    lang = resolve_lang(args.lang)
    run = _load(args)
    return _done(save_figure(plot_curves(curves_data(run.metrics), lang=lang), _out(args, "curves.png")))


def _evaluated(args: argparse.Namespace, lang: str) -> tuple[Any, Any, Any]:
    from cnnlab.data.defaults import EVAL_BATCH_SIZE
    from cnnlab.inference.dataset import evaluation_set
    from cnnlab.inference.evaluation import evaluate

    run = _load(args)
    images, _label = evaluation_set(run, args.data, args.split, lang, max_images=None)
    batch = int(getattr(run.config, "eval_batch_size", EVAL_BATCH_SIZE) or EVAL_BATCH_SIZE)
    return run, images, evaluate(run, images, batch_size=batch)


def cmd_confusion(args: argparse.Namespace) -> int:
    from cnnlab.visualize import plot_confusion, save_figure

    lang = resolve_lang(args.lang)
    _run, _images, res = _evaluated(args, lang)
    return _done(save_figure(plot_confusion(res.confusion, res.classes, lang=lang), _out(args, "confusion.png")))


def cmd_mistakes(args: argparse.Namespace) -> int:
    from cnnlab.visualize import plot_mistakes, save_figure, top_mistakes

    lang = resolve_lang(args.lang)
    _run, images, res = _evaluated(args, lang)
    idx = top_mistakes(res.losses, res.predictions, res.labels, args.n)
    fig = plot_mistakes(images.images, res.labels, res.predictions, res.probabilities, idx, res.classes, lang=lang)
    return _done(save_figure(fig, _out(args, "mistakes.png")))


def cmd_report(args: argparse.Namespace) -> int:
    from cnnlab.report import check_not_running, write_report
    from cnnlab.train.run import read_run_info
    from cnnlab.utils.paths import check_output_file

    lang = resolve_lang(args.lang)
    check_not_running(Path(args.run), args.force)
    if args.out:
        check_output_file(args.out, "--out")  # before the run and the data load
    run = read_run_info(args.run, args.checkpoint)  # no model: a report kept in RUN/cache/ needs none
    images, label, split = None, "", "val"
    if args.data is not None or args.split != "val":
        split = args.split if args.split in ("val", "test", "train") else "other"
        from cnnlab.inference.dataset import evaluation_set

        images, label = evaluation_set(run, args.data, args.split, lang)
    path = write_report(run, data=images, data_label=label, lang=lang, out=args.out, force=args.force,
                        split=split)
    size = path.stat().st_size
    print(f"{path}  ({size / 1e6:.2f} MB)")
    return 0
