"""`genlab serve RUN [RUN ...]`: a local page where a person plays with trained models.

Starlette on uvicorn: a small, well-kept ASGI library and server that need nothing at run time beyond
themselves. The page is one static file shipped in the package (static/explorer.html, its script and
style inside), so the explorer works with no network at all: nothing is fetched from anywhere. (Gradio
would bring dozens of packages and a front end of its own, and fetch assets unless set otherwise.)

The event loop only reads requests and writes answers: every model call runs on a small pool of worker
threads (one model at a time per run, behind its lock), so the page stays responsive while a model works,
and a request past the pool's queue is told to try again (503) rather than piling up. Completion streams
its frames as server-sent events; any other request's progress (a model's long loop, a data set built on
first use) is kept under the ticket the page gave it, which the page asks for while it waits (tickets.py).

Safety: it listens on 127.0.0.1 unless told otherwise, and says where; every request is checked
(guard.py: bounded counts, sizes, steps and code values; bodies of at most 4 MiB; uploads read by the
model's modality or refused with one line); a run is named by its number in the list it was given and a
file by its path inside that run only; on the loopback address, requests for another host name are
refused (a web page elsewhere cannot reach it by renaming itself).
"""
from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

from .. import api, modalities, progress
from ..errors import UserError
from ..data.containers.two_domains import split_domains
from ..runs import Run, diverged
from . import views
from .actions import ACTIONS, input_of, label_of, seed_of
from .guard import Refused, is_loopback, read_json, run_file, SERVED_SUFFIXES
from .tickets import Tickets, check, ticket_of

STATIC = Path(__file__).parent / "static"
LIMITS = views.LIMITS
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"DENY"),
           (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' data: "
                                        b"blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                                        b"connect-src 'self'; frame-ancestors 'none'")]


class Entry:
    """One run the explorer serves: its model, loaded once, and its data, read on first need."""

    def __init__(self, key: str, path: Path, device):
        self.key, self.path = key, Path(path)
        self.run = Run.open(path)
        self.model = api.load(path, device=device)
        self.lock = threading.Lock()           # one call at a time into this model
        self._data = None

    def data(self):
        if self._data is None:
            self._data = modalities.of_run(self.run).reload(self.run, warn=False)
        return self._data

    def describe(self) -> dict:
        d = self.run.config.get("data", {})
        written = sorted(p for p in (self.path / "samples").glob("epoch-*") if p.suffix.lower() in SERVED_SUFFIXES)
        # The last epoch's samples, every file of them: a picture, and a GIF or a sound beside it.
        files = [str(p.relative_to(self.path)) for p in written if p.stem == written[-1].stem] if written else []
        if (self.path / "curves.png").is_file():
            files.append("curves.png")
        out = {"key": self.key, "name": self.path.resolve().name, "data": d.get("spec"),
               "epochs": (self.run.metrics() or [{"epoch": 0}])[-1]["epoch"], "files": files,
               "diverged": diverged(self.run.config), **views.describe(self.model)}
        if "translate" in self.model.abilities:          # the names of its two domains, a folder by its own name
            parts = split_domains(str(d.get("spec", ""))) or ("A", "B")
            out["domains"] = [Path(part.removeprefix("folder:")).name or part for part in parts]
        return out

    def needs(self, panel: str) -> None:
        if panel not in views.panels(self.model):
            raise Refused(400, f"{self.model.name} has no {panel} panel (it has {', '.join(views.panels(self.model))})")


class Jobs:
    """Model calls off the event loop: a pool of worker threads, and a bound on the calls in hand."""

    def __init__(self, workers: int = 2, most: int = 64):
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="genlab-model")
        self.in_hand, self.most = 0, most

    def submit(self, fn) -> asyncio.Future:
        if self.in_hand >= self.most:        # only the event loop's thread counts, so no lock is needed
            raise Refused(503, f"busy: {self.in_hand} requests are in hand; try again in a moment")
        self.in_hand += 1
        future = asyncio.wrap_future(self.pool.submit(fn))
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future) -> None:
        self.in_hand -= 1
        if not future.cancelled():
            future.exception()               # retrieved: a failure is answered, not logged as unretrieved


# ---- the app ----

def make_app(entries: list[Entry], *, workers: int = 2, most: int = 64, hosts: list[str] | None = None):
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    page = (STATIC / "explorer.html").read_text(encoding="utf-8")
    by_key = {e.key: e for e in entries}
    jobs = Jobs(workers, most)
    tickets = Tickets(most)

    def entry_of(request) -> Entry:
        e = by_key.get(request.path_params["run"])
        if e is None:
            raise Refused(404, "no such run: the explorer serves runs 0 to "
                               f"{len(entries) - 1}")
        return e

    def locked(entry, fn, *args, watch=None):
        def work():
            with entry.lock:
                if watch is not None:
                    watch.working()
                try:
                    with progress.watched(watch.tick) if watch is not None else nullcontext():
                        return fn(entry, *args)
                except UserError as e:
                    raise Refused(400, str(e)) from None
        return work

    async def index(request):
        return HTMLResponse(page, headers={"cache-control": "no-store"})

    async def runs(request):
        return JSONResponse({"runs": [e.describe() for e in entries], "limits": LIMITS})

    async def action(request):
        name = request.path_params["action"]
        if name not in ACTIONS:
            raise Refused(404, f"no such action {name[:40]!r}")
        entry = entry_of(request)
        ticket = ticket_of(request)
        body = await read_json(request)
        watch = tickets.open(ticket)
        try:
            return JSONResponse(await jobs.submit(locked(entry, ACTIONS[name], body, watch=watch)))
        finally:
            tickets.close(ticket, watch)

    async def progress_of(request):
        """What the request of this ticket is at: {"state": "waiting" | "working" | "none", "seconds", and its
        latest step's "label", "done", "total", "unit"}."""
        return JSONResponse(tickets.state(check(request.path_params["ticket"])), headers={"cache-control": "no-store"})

    async def complete(request):
        entry = entry_of(request)
        body = await read_json(request)
        entry.needs("complete")
        seed, label = seed_of(body), label_of(entry, body)
        try:
            mask = views.mask_tensor(entry.model, body.get("mask"))
        except UserError as e:
            raise Refused(400, str(e)) from None
        x = await jobs.submit(locked(entry, lambda e, v: input_of(e, v, "input"), body.get("input")))
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def work(entry):
            try:
                for done, total, image in views.completion_frames(entry.model, x, mask, seed, label):
                    if stop.is_set():            # the page went away: no more frames to draw
                        return
                    event = {"done": done, "total": total, "image": views.image_url(image)}
                    loop.call_soon_threadsafe(frames.put_nowait, event)
                loop.call_soon_threadsafe(frames.put_nowait, {"end": True})
            except Exception as e:               # told to the page as its last event
                message = str(e) if isinstance(e, (UserError, Refused)) else f"internal error ({type(e).__name__})"
                if not isinstance(e, (UserError, Refused)):
                    traceback.print_exc()
                loop.call_soon_threadsafe(frames.put_nowait, {"error": message, "end": True})

        def run_locked():
            with entry.lock:
                work(entry)

        jobs.submit(run_locked)

        async def events():
            try:
                while True:
                    event = await frames.get()
                    yield f"data: {json.dumps(event)}\n\n"
                    if event.get("end"):
                        return
            finally:
                stop.set()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def files(request):
        entry = entry_of(request)
        path = run_file(entry.path, request.path_params["path"])
        return FileResponse(path, media_type=SERVED_SUFFIXES[path.suffix.lower()],
                            headers={"cache-control": "no-store"})

    async def refused(request, exc: Refused):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def user_error(request, exc: UserError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def http_error(request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    async def failed(request, exc: Exception):
        traceback.print_exception(exc)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server goes on"}, status_code=500)

    async def no_icon(request):
        return Response(status_code=204)

    routes = [Route("/", index), Route("/favicon.ico", no_icon), Route("/api/runs", runs),
              Route("/api/progress/{ticket}", progress_of),
              Route("/api/run/{run}/complete", complete, methods=["POST"]),
              Route("/api/run/{run}/{action}", action, methods=["POST"]),
              Route("/files/{run}/{path:path}", files)]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)] if hosts else []
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={Refused: refused, UserError: user_error, HTTPException: http_error,
                                        Exception: failed})
    return SecurityHeaders(app)


class SecurityHeaders:
    """Adds HEADERS to every answer (a plain ASGI wrapper: streamed answers pass through untouched)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---- starting it ----

def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one), or one line saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UserError(f"--host {host}: {e.strerror or e}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve(runs, host: str = "127.0.0.1", port: int = 8000, *, device="auto", threads: int | None = None,
          workers: int = 2) -> None:
    """Serve the explorer of `runs` until interrupted."""
    try:
        import uvicorn
        import starlette  # noqa: F401
    except ImportError:
        raise UserError("genlab serve needs starlette and uvicorn: pip install -e . brings them") from None
    paths = [Path(p) for p in runs]
    if not paths:
        raise UserError("name at least one run to serve")
    dev = api.setup_torch(device, threads)
    entries = [Entry(str(i), p, dev) for i, p in enumerate(paths)]
    loopback = is_loopback(host)
    hosts = ["127.0.0.1", "localhost", "::1", "[::1]"] if loopback else None
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    names = ", ".join(e.path.resolve().name for e in entries[:5]) + (" ..." if len(entries) > 5 else "")
    where = ("this machine only (--host 0.0.0.0 would open it to the network)" if loopback else
             "WARNING: every machine that can reach this one can use it")
    print(f"genlab explorer of {len(entries)} run{'s' * (len(entries) != 1)} ({names}) on http://{shown}:{bound}/ "
          f"— listening on {host}: {where}; Ctrl-C stops it", flush=True)
    config = uvicorn.Config(make_app(entries, workers=workers, hosts=hosts), log_level="warning",
                            access_log=False, timeout_graceful_shutdown=3)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    print("genlab explorer stopped", file=sys.stderr, flush=True)
