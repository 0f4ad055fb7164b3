"""`kiosk-admin console`: the JSON API under /api/ (Flask), served on 127.0.0.1 only.

Every /api/ route needs ``Authorization: Bearer <DIR/admin-token>`` (or, once the pages
exist, a logged-in session); without it: 401. Uploads are signed documents; the console
checks them as a kiosk would and never holds a private key.
"""
from __future__ import annotations

import base64
import binascii
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, request
from werkzeug.serving import make_server

from kiosk.console.db import PROBLEMS
from kiosk.console.rollouts import RolloutError
from kiosk.console.service import Console, ConsoleConfig
from kiosk.console.web import install_pages

log = logging.getLogger(__name__)

SessionCheck = Callable[[], bool]  # the pages' login session (kiosk/console/web), when they are there


def create_app(console: Console, session_ok: SessionCheck | None = None) -> Flask:
    app = Flask("kiosk.console")
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    app.extensions["qhb_console"] = console
    if session_ok is None:  # the pages (kiosk/console/web): login sessions, also accepted by the API
        session_ok = install_pages(app, console)

    @app.before_request
    def _auth() -> Response | None:
        if not request.path.startswith("/api/"):
            return None
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if console.token_ok(token) or (session_ok is not None and session_ok()):
            return None
        resp = jsonify({"error": "unauthorized"})
        resp.status_code = 401
        resp.headers["WWW-Authenticate"] = 'Bearer realm="qhb-console"'
        return resp

    def refused(e: RolloutError) -> tuple[Response, int]:
        return jsonify({"error": "refused", "reason": e.reason, "detail": e.detail}), 422

    @app.get("/api/kiosks")
    def kiosks() -> Any:
        problem = request.args.get("problem") or None
        if problem is not None and problem not in PROBLEMS:
            return jsonify({"error": f"problem must be one of {', '.join(PROBLEMS)}"}), 400
        limit = request.args.get("limit", type=int)
        body = console.db.list_kiosks_json(group=request.args.get("group") or None, problem=problem, limit=limit,
                                           offset=request.args.get("offset", 0, type=int))
        return Response(body, mimetype="application/json")  # assembled once in the database layer

    @app.get("/api/counts")
    def counts() -> Any:
        return jsonify(console.db.counts())

    @app.get("/api/kiosks/<kiosk_id>")
    def kiosk(kiosk_id: str) -> Any:
        page = console.db.kiosk_page(kiosk_id)
        if page is None:
            abort(404)
        page["commands"] = [{key: v for key, v in r.items() if key != "data"} for r in page["commands"]]
        return jsonify({**page.pop("kiosk"), **page})

    @app.get("/api/kiosks/<kiosk_id>/screenshot.png")
    def screenshot(kiosk_id: str) -> Any:
        shot = console.db.last_screenshot(kiosk_id)
        if shot is None:
            abort(404)
        return Response(base64.b64decode(shot[1]), mimetype="image/png")

    @app.post("/api/commands")
    def upload_command() -> Any:
        try:
            return jsonify(console.upload_command(request.get_data())), 201
        except RolloutError as e:
            return refused(e)

    @app.get("/api/commands/<command_id>")
    def command(command_id: str) -> Any:
        c = console.db.command(command_id)
        if c is None:
            abort(404)
        return jsonify(c)

    @app.post("/api/bundles")
    def push_bundle() -> Any:
        try:
            return jsonify(console.push_bundle(request.get_data())), 201
        except RolloutError as e:
            return refused(e)

    @app.get("/api/acks/<int:version>")
    def acks(version: int) -> Any:
        return jsonify(console.db.acks_for(version=version))

    @app.post("/api/rollouts")
    def start_rollout() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("bundle"), str):
            return jsonify({"error": 'send {"bundle": "<base64 of the signed bundle>", "plan": {...}}'}), 400
        try:
            raw = base64.b64decode(body["bundle"], validate=True)
        except (binascii.Error, ValueError):
            return jsonify({"error": "bundle is not base64"}), 400
        try:
            rid = console.start_rollout(raw, body.get("plan") or {})
        except RolloutError as e:
            return refused(e)
        return jsonify(console.rollouts.status(rid)), 201

    @app.get("/api/rollouts")
    def list_rollouts() -> Any:
        return jsonify([console.rollouts.status(r["id"]) for r in console.db.rollouts()])

    @app.get("/api/rollouts/<rollout_id>")
    def rollout(rollout_id: str) -> Any:
        st = console.rollouts.status(rollout_id)
        if st is None:
            abort(404)
        return jsonify(st)

    @app.post("/api/rollouts/<rollout_id>/<action>")
    def rollout_action(rollout_id: str, action: str) -> Any:
        fn = {"pause": console.rollouts.pause, "resume": console.rollouts.resume,
              "abort": console.rollouts.abort}.get(action)
        if fn is None:
            abort(404)
        try:
            fn(rollout_id)
        except RolloutError as e:
            return (jsonify({"error": e.reason, "detail": e.detail}), 404 if e.reason == "unknown_rollout" else 409)
        return jsonify(console.rollouts.status(rollout_id))

    return app


def run_console(*, broker_url: str, port: int, state_dir: str, db_url: str | None, admin_keys: list[str],
                threshold: int, echo: Callable[[str], None] = print) -> int:
    """Foreground: ingest, rollouts and the API on 127.0.0.1:PORT until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    console = Console(ConsoleConfig(broker_url=broker_url, state_dir=Path(state_dir), db_url=db_url,
                                    admin_keys=admin_keys, threshold=threshold))
    if console.token_created:
        echo(f"console: wrote the admin token to {Path(state_dir) / 'admin-token'} (mode 0600)")
    if not admin_keys:
        echo("console: no --admin-key given: uploads cannot be verified and will be refused")
    console.start()
    server = make_server("127.0.0.1", port, create_app(console), threaded=True)
    stop = threading.Event()

    def _term(*_: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    echo(f"console: serving on http://127.0.0.1:{server.server_port} ({console.db.dialect})")
    try:
        server.serve_forever()
    finally:
        console.stop()
    echo("console: stopped")
    return 0
