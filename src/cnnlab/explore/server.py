"""The explore page's local server: Starlette routes over an :class:`~cnnlab.explore.session.Explorer`.

Safe by default: it binds 127.0.0.1 and accepts only localhost Host headers (no DNS rebinding); another
host needs ``allow_remote`` and then every request must carry the random token. Files are served
only from the package's ``static/`` folder; uploads are capped and decoded with the training image
guards; every answer carries a Content-Security-Policy that allows nothing from the network.

>>> from cnnlab.explore import open_explorer
>>> from starlette.testclient import TestClient
>>> client = TestClient(create_app(open_explorer("keras-mnist")), base_url="http://127.0.0.1")
>>> client.get("/api/info").json()["untrained"]
True
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import threading
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CnnlabError
from cnnlab.explore.assets import STATIC_FILES, static_file

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

MAX_UPLOAD = 10 * 2**20  # bytes: an upload larger than this is refused before it is decoded
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def create_app(ex: Any, *, token: str | None = None, allowed_hosts: tuple[str, ...] = LOCAL_HOSTS,
               max_upload: int = MAX_UPLOAD, log: Callable[[str], None] | None = None) -> Starlette:
    """The ASGI app. ``token``: required on every request (``?token=`` or header ``X-Cnnlab-Token``)."""
    _require_extra()
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()  # one torch computation at a time: the session's caches are not thread-safe
    say = log or (lambda text: print(text, file=sys.stderr))

    async def compute(fn: Callable[[], Any]) -> Response:
        def locked() -> Any:
            with lock:
                return fn()

        try:
            return JSONResponse(await asyncio.to_thread(locked))
        except CnnlabError as exc:
            say(f"error: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def index(_: Request) -> Response:
        return _file("index.html")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:  # a fixed list: no path from a request ever reaches the file system
            return JSONResponse({"error": f"no such file: {name}"}, status_code=404)
        return _file(name)

    def ints(request: Request, *names: str) -> list[int]:
        try:
            return [int(request.path_params[n]) for n in names]
        except ValueError:
            raise CnnlabError(f"expected whole numbers for {', '.join(names)} in {request.url.path}") from None

    def api(fn: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            return await compute(lambda: fn(request))
        return handler

    async def upload(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_upload):
            return _too_large(max_upload, say)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload:
                return _too_large(max_upload, say)
        name = request.query_params.get("name", "upload")[:200]
        return await compute(lambda: {"id": ex.add_upload(bytes(body), name), "images": ex.images()})

    def cam(r: Request) -> Any:
        target = r.query_params.get("class")
        layer = r.query_params.get("layer")
        try:
            return ex.cam(r.path_params["image"], None if target in (None, "") else int(target),
                          None if layer in (None, "") else int(layer))
        except ValueError:
            raise CnnlabError("class and layer must be whole numbers") from None

    routes = [
        Route("/", index),
        Route("/static/{name:path}", asset),
        Route("/api/info", api(lambda r: ex.info())),
        Route("/api/images", api(lambda r: ex.images())),
        Route("/api/image/{image}", api(lambda r: ex.image(r.path_params["image"]))),
        Route("/api/maps/{image}/{layer}/{page}",
              api(lambda r: ex.maps(r.path_params["image"], *ints(r, "layer", "page")))),
        Route("/api/layer/{layer}", api(lambda r: ex.layer(*ints(r, "layer")))),
        Route("/api/neuron/{image}/{layer}/{channel}/{y}/{x}",
              api(lambda r: ex.neuron(r.path_params["image"], *ints(r, "layer", "channel", "y", "x")))),
        Route("/api/cam/{image}", api(cam)),
        Route("/api/patches/{layer}/{channel}", api(lambda r: ex.patches(*ints(r, "layer", "channel")))),
        Route("/api/upload", upload, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    return _guard(app, token, allowed_hosts)


def _require_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise CnnlabError("cnnlab explore needs the [explore] extra: pip install 'cnnlab[explore]' "
                          "(starlette and uvicorn)") from None


def _file(name: str) -> Response:
    from starlette.responses import FileResponse

    media = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
             "css": "text/css; charset=utf-8"}[name.rsplit(".", 1)[1]]
    with resources.as_file(static_file(name)) as path:
        return FileResponse(path, media_type=media)


def _too_large(limit: int, say: Callable[[str], None]) -> Response:
    from starlette.responses import JSONResponse

    message = f"the upload is larger than {limit // 2**20} MiB; send a smaller image file"
    say(f"error: {message}")
    return JSONResponse({"error": message}, status_code=413)


def _guard(app: Any, token: str | None, allowed_hosts: tuple[str, ...]) -> Any:
    """ASGI middleware: Host check, token check, security headers on every answer."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        problem = None
        if allowed_hosts and hostname not in allowed_hosts:
            problem = (400, f"host {hostname!r} is not allowed; open the page through 127.0.0.1")
        elif token is not None and not scope.get("path", "").startswith("/static/") \
                and not _has_token(scope, headers, token):  # static/ holds only the package's own files
            problem = (403, "this page needs the token from the URL printed by `cnnlab explore`")
        if problem is not None:
            body = json.dumps({"error": problem[1]}).encode()
            await _send(send, problem[0], body, "application/json")
            return

        async def send_secure(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await app(scope, receive, send_secure)

    return guarded


def _has_token(scope: dict[str, Any], headers: dict[str, str], token: str) -> bool:
    from urllib.parse import parse_qs

    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    given = headers.get("x-cnnlab-token") or (query.get("token") or [""])[0]
    return secrets.compare_digest(given.encode(), token.encode())


async def _send(send: Any, status: int, body: bytes, media: str) -> None:
    extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_host(host: str, allow_remote: bool) -> bool:
    """True for a localhost address; another host needs ``allow_remote`` (else a CnnlabError saying so)."""
    local = host in LOCAL_HOSTS
    if not local and not allow_remote:
        raise CnnlabError(f"--host {host} would make the page reachable from other machines; "
                          "add --allow-remote to do that on purpose (a random token is then required)")
    return local


def serve(ex: Any, *, host: str = "127.0.0.1", port: int = 8765, allow_remote: bool = False,
          open_browser: bool = True, lang: str = "en", ready: Callable[[str], None] | None = None) -> None:
    """Run the server until Ctrl+C. A host other than localhost needs ``allow_remote`` and gets a token."""
    _require_extra()
    import uvicorn

    from cnnlab.i18n import tr

    local = check_host(host, allow_remote)
    token = None if local else new_token()
    app = create_app(ex, token=token, allowed_hosts=LOCAL_HOSTS if local else ())
    shown = "127.0.0.1" if local else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    if not local:
        print(tr("explore.cli.remote", lang, host=host), file=sys.stderr)
    print(tr("explore.cli.serving", lang, url=url), flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if open_browser:
        import webbrowser

        threading.Timer(0.8, lambda: webbrowser.open(url)).start()
    if ready is not None:
        ready(url)
    try:
        server.run()
    except OSError as exc:
        raise CnnlabError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port") from None
