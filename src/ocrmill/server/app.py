"""The FastAPI app factory and the uvicorn runner behind ``ocrmill serve``.

``create_app`` wires routes, error handlers, metrics, CORS and the static page; its
lifespan (on the event loop) starts the one :class:`~ocrmill.server.service.Service`
(worker pool, job store, feeder) before the first request and stops it after the last.
"""

from __future__ import annotations

import copy
import logging
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ocrmill.errors import OcrmillError
from ocrmill.server.api_errors import ApiError, error_body
from ocrmill.server.metrics import MetricsMiddleware, ServerMetrics
from ocrmill.server.routes import STATIC_DIR, api, ops
from ocrmill.server.service import Service
from ocrmill.server.settings import ServerSettings

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ocrmill")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(settings: ServerSettings) -> FastAPI:
    """A FastAPI app that owns one worker pool for its lifetime."""
    metrics = ServerMetrics()
    service = Service(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await service.start()
        except OcrmillError as err:
            app.state.startup_error = err
            raise
        url = getattr(app.state, "url", None)
        if url:
            print(
                f"ocrmill: serving on {url} (web page at /, API docs at /docs)",
                file=sys.stderr,
                flush=True,
            )
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="ocrmill",
        version=_version(),
        summary="OCR over HTTP: single images, batch jobs of images and PDFs",
        lifespan=lifespan,
    )
    app.state.service = service
    app.include_router(ops)
    app.include_router(api)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def count(code: str) -> None:
        metrics.errors.labels(code).inc()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        count(exc.code)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(OcrmillError)
    async def ocrmill_error(request: Request, exc: OcrmillError) -> JSONResponse:
        count(exc.code)
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
        count("bad_request")
        return JSONResponse(error_body("bad_request", "; ".join(parts)), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        count(code)
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        count("internal")
        return JSONResponse(error_body("internal", "internal server error"), status_code=500)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"],
            expose_headers=["Retry-After", "Location"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from ocrmill.errors import ConfigError

        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def run_server(settings: ServerSettings, host: str, port: int, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; raises the pool's error if the workers cannot start."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        log.warning("listening on %s without an API key: anyone who can reach it may use it", host)
    app = create_app(settings)
    service: Service = app.state.service
    service.prepare()  # a locked or unwritable data directory fails here, plainly
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    app.state.url = f"http://{shown}:{bound_port}"
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"  # stdout is for results
    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=log_config,
        limit_concurrency=settings.limits.max_connections,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = uvicorn.Server(config)

    def stop_on_fatal(err: OcrmillError) -> None:
        server.should_exit = True

    service.on_fatal = stop_on_fatal
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn exits when the lifespan startup fails
        pass
    finally:
        sock.close()
    if service.fatal is not None:
        raise service.fatal
    startup_error = getattr(app.state, "startup_error", None)
    if startup_error is not None:
        raise startup_error
    if not server.started:
        raise OcrmillError("the server could not start (see the messages above)")
