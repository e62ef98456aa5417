"""``cnnlab explore RUN|SPEC``: see inside a network in the browser, down to one neuron's arithmetic.

    cnnlab explore runs/mnist                    # opens http://127.0.0.1:8765/ in the browser
    cnnlab explore keras-mnist --data sample     # an untrained spec, on random weights
    cnnlab explore runs/mnist --static site/     # a page that works without a server

Registration imports neither torch nor the server; the handler does. Thin shell over ``cnnlab.explore``.
"""

from __future__ import annotations

import argparse

from cnnlab.cli.help import LANG_HELP, HelpFormatter
from cnnlab.cli.options import whole
from cnnlab.i18n import resolve_lang


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore", formatter_class=HelpFormatter,
        help="explore a trained run (or a spec) in the browser",
        description="Open a local page that shows every layer's feature maps for an image, the formulas of "
        "each layer, the arithmetic of any single neuron, Grad-CAM and what a channel looks for. "
        "It listens on 127.0.0.1 only, unless --host and --allow-remote say otherwise.")
    p.add_argument("target", metavar="RUN|SPEC", help="run folder written by `cnnlab train`, or a spec (file or bundled name)")
    p.add_argument("--data", default=None, help="images to show (folder, CSV, mnist, sample, ...); when omitted: the run's validation split")
    p.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which checkpoint (when omitted: best; last for a run still training)")
    p.add_argument("--images", type=whole(1, 10_000), default=48, help="how many validation images to offer")
    p.add_argument("--port", type=whole(0, 65_535), default=8765, help="port to listen on")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; anything but localhost needs --allow-remote")
    p.add_argument("--allow-remote", action="store_true", help="really listen on --host (prints a warning; the URL carries a random token)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser, just print the URL")
    p.add_argument("--static", metavar="DIR", default=None, help="write a static page (no server needed) to DIR and exit")
    p.add_argument("--static-images", type=whole(1, 1_000), default=8, help="images precomputed in the static page")
    p.add_argument("--threads", type=whole(0, 4096), default=0,
                   help="CPU threads for torch; 0 = one per free core (affinity, CPU quota, other busy processes)")
    p.add_argument("--lang", default=None, help=LANG_HELP)
    p.set_defaults(func=cmd_explore)


def cmd_explore(args: argparse.Namespace) -> int:
    from cnnlab.explore import open_explorer
    from cnnlab.explore.session import choose_threads
    from cnnlab.i18n import tr

    lang = resolve_lang(args.lang)
    if not args.static:
        from cnnlab.explore.server import check_host

        check_host(args.host, args.allow_remote)  # before the model is loaded
    choose_threads(args.threads)
    count = args.static_images if args.static else args.images
    ex = open_explorer(args.target, data=args.data, lang=lang, max_images=max(0, count), checkpoint=args.checkpoint)
    for note in ex.notes:
        print(note)
    if args.static:
        from cnnlab.explore import export_static

        path = export_static(ex, args.static)
        print(tr("explore.cli.static", lang, path=path, n=len(ex.image_ids())))
        return 0
    from cnnlab.explore import serve

    serve(ex, host=args.host, port=args.port, allow_remote=args.allow_remote, open_browser=not args.no_browser,
          lang=lang)
    return 0
