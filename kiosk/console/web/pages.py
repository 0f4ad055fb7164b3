"""The pages and their guards: login (throttled), forced password change, roles, CSRF on every form.

* Every page but the login needs a session; an account that still has its first password
  (the admin token) is sent to the password page until it sets its own.
* Every POST carries the session's CSRF token (a hidden form field, or ``X-CSRF-Token`` for
  the API when it is called with a session rather than the bearer token); without it: 403.
* ``viewer`` accounts read; uploads, rollouts and their actions need ``operator``: 403.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from kiosk.console.accounts import SESSION_S, AccountError, Accounts, session_secret
from kiosk.console.db import iso
from kiosk.console.rollouts import RolloutError
from kiosk.console.service import Console
from kiosk.console.web import queries

log = logging.getLogger(__name__)

SECRET_FILE = "console-secret"
PUBLIC_ENDPOINTS = {"web.login", "web.static"}
MUST_CHANGE_OK = {"web.password", "web.logout"}

LEVELS = {"ok": "正常", "warn": "警告", "error": "故障", "unknown": "未知"}
PAPER = {"ok": "纸张正常", "low": "纸将用完", "out": "缺纸", "unknown": "纸张未知", None: ""}
DEVICE_NAMES = [("idcard", "身份证读卡器"), ("qr", "扫码器"), ("camera", "摄像头"), ("printer", "打印机")]
STATES = {"running": "进行中", "paused": "已暂停", "halted": "已自动停止", "aborted": "已中止", "completed": "已完成"}
RESULTS = {"applied": "已应用", "refused": "拒绝", "failed": "失败", "rolled_back": "已回滚", "done": "完成",
           "expired": "已过期", "pending": "等待中"}
ROLES = {"viewer": "只读", "operator": "操作员"}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} 秒"
    if s < 3600:
        return f"{s // 60} 分钟"
    if s < 86400:
        return f"{s // 3600} 小时 {s % 3600 // 60} 分"
    return f"{s // 86400} 天 {s % 86400 // 3600} 小时"


def _safe_next(target: str | None) -> str:
    """Only a local path: a login link must not send the administrator elsewhere."""
    if not target:
        return url_for("web.fleet")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.fleet")
    return target


def install_pages(app: Flask, console: Console) -> Callable[[], bool]:
    """Register the pages on `app`; return the API's session check (a logged-in, password-changed account)."""
    app.secret_key = session_secret(console.cfg.state_dir / SECRET_FILE)
    app.config.update(SESSION_COOKIE_NAME="qhb_console", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", PERMANENT_SESSION_LIFETIME=timedelta(seconds=SESSION_S))
    accounts = Accounts(console.db.engine)
    if accounts.ensure_first_admin(console.token):
        log.info("console: first login is 'admin' with the admin token as its password (to be changed)")
    queries.ensure_indexes(console.db.engine)
    app.extensions["qhb_accounts"] = accounts

    @app.before_request
    def _who() -> Any:
        g.user = None
        sid = session.get("sid")
        if sid and not request.path.startswith("/assets/"):
            g.user = accounts.session(sid)
        if not request.path.startswith("/api/") or g.user is None:
            return None
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return None  # the token decides (kiosk.console.server)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if not hmac.compare_digest(request.headers.get("X-CSRF-Token", ""), g.user.csrf):
                return {"error": "csrf"}, 403
            if not g.user.can_operate:
                return {"error": "forbidden", "detail": "viewer accounts are read only"}, 403
        return None

    def session_ok() -> bool:
        return g.get("user") is not None and not g.user.must_change

    bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/assets")

    @bp.before_request
    def _guard() -> Any:
        if request.method == "POST":
            expected = g.user.csrf if g.user is not None else session.get("csrf_anon", "")
            if not expected or not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
                return render_template("console/error.html", title="请求被拒绝",
                                       message="表单已失效（CSRF 校验失败）。请刷新页面后重试。"), 403
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if g.user is None:
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        if g.user.must_change and request.endpoint not in MUST_CHANGE_OK:
            return redirect(url_for("web.password"))
        return None

    def operator() -> Response | None:
        if not g.user.can_operate:
            return Response(render_template("console/error.html", title="没有权限",
                                            message="只读账户不能上传、发布或执行命令。"), 403)
        return None

    @bp.app_context_processor
    def _globals() -> dict[str, Any]:
        token = g.user.csrf if g.get("user") is not None else None
        if token is None:
            token = session.get("csrf_anon") or secrets.token_urlsafe(32)
            session["csrf_anon"] = token
        return {"csrf_token": token, "user": g.get("user"), "LEVELS": LEVELS, "PAPER": PAPER,
                "DEVICE_NAMES": DEVICE_NAMES, "STATES": STATES, "RESULTS": RESULTS, "ROLES": ROLES, "age": _age,
                "PROBLEMS": queries.PROBLEM_LABELS, "iso": iso}

    # ------------------------------------------------------------------ login, logout, password
    @bp.get("/")
    def index() -> Any:
        return redirect(url_for("web.fleet"))

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            return render_template("console/login.html", next=request.args.get("next", ""))
        name = request.form.get("username", "").strip()
        result = accounts.login(name, request.form.get("password", ""), request.remote_addr or "unknown")
        if result.ok:
            session.clear()
            session.permanent = True
            session["sid"] = result.sid
            log.info("console login", extra={"account": name})
            return redirect(url_for("web.password") if result.must_change else _safe_next(request.form.get("next")))
        log.warning("console login refused", extra={"account": name[:64], "locked_s": round(result.locked_s)})
        msg = (f"尝试次数过多，请 {int(result.locked_s) + 1} 秒后再试。" if result.locked_s > 0
               else "用户名或密码不正确。")
        return render_template("console/login.html", error=msg, next=request.form.get("next", "")), (
            429 if result.locked_s > 0 else 401)

    @bp.post("/logout")
    def logout() -> Any:
        accounts.logout(session.get("sid"))
        session.clear()
        return redirect(url_for("web.login"))

    @bp.route("/password", methods=["GET", "POST"])
    def password() -> Any:
        if request.method == "GET":
            return render_template("console/password.html")
        new, again = request.form.get("new", ""), request.form.get("again", "")
        if not g.user.must_change:  # the first password (the admin token) was just typed at the login
            check = accounts.login(g.user.account, request.form.get("current", ""), request.remote_addr or "unknown")
            if not check.ok:
                msg = ("当前密码不正确。" if check.locked_s <= 0
                       else f"尝试次数过多，请 {int(check.locked_s) + 1} 秒后再试。")
                return render_template("console/password.html", error=msg), 400
            accounts.logout(check.sid)
        if new != again:
            return render_template("console/password.html", error="两次输入的新密码不一致。"), 400
        try:
            accounts.set_password(g.user.account, new, keep_sid=session.get("sid"))
        except AccountError as e:
            return render_template("console/password.html", error=str(e)), 400
        flash("密码已更新。")
        return redirect(url_for("web.fleet"))

    # ------------------------------------------------------------------ the fleet and one kiosk
    @bp.get("/fleet")
    def fleet() -> Any:
        group = request.args.get("group") or None
        problem = request.args.get("problem") or None
        if problem not in (None, *queries.PROBLEM_LABELS):
            problem = None
        try:
            page = int(request.args.get("page", "1"))
        except ValueError:
            page = 1
        data = queries.fleet_page(console.db, group=group, problem=problem, page=page)
        return render_template("console/fleet.html", counts=console.db.counts(), groups=queries.groups(console.db),
                               group=group, problem=problem, **data)

    @bp.get("/kiosks/<kiosk_id>")
    def kiosk(kiosk_id: str) -> Any:
        page = console.db.kiosk_page(kiosk_id)
        if page is None:
            abort(404)
        return render_template("console/kiosk.html", k=page["kiosk"], history=page["health_history"],
                               acks=page["acks"], results=page["commands"], screenshot_at=page["last_screenshot_at"])

    # ------------------------------------------------------------------ rollouts
    @bp.get("/rollouts")
    def rollouts() -> Any:
        rows = [console.rollouts.status(r["id"]) for r in reversed(console.db.rollouts())]
        return render_template("console/rollouts.html", rollouts=[r for r in rows if r])

    @bp.post("/rollouts")
    def start_rollout() -> Any:
        denied = operator()
        if denied:
            return denied
        f = request.files.get("bundle")
        raw = f.read() if f else b""

        def bad(msg: str, code: int = 400) -> Any:
            rows = [console.rollouts.status(r["id"]) for r in reversed(console.db.rollouts())]
            return render_template("console/rollouts.html", rollouts=[r for r in rows if r], error=msg,
                                   form=request.form), code

        if not raw:
            return bad("请选择已签名的配置包文件。")
        try:
            percentages = [float(p) for p in request.form.get("percentages", "5,25,100").replace("，", ",").split(",")
                           if p.strip()]
            canaries = request.form.get("canaries", "").replace("，", " ").replace(",", " ").split()
            plan = {"canaries": canaries,
                    "percentages": percentages, "soak_s": float(request.form.get("soak_s") or 600),
                    "min_stage_s": float(request.form.get("min_stage_s") or 0),
                    "max_failure_share": float(request.form.get("max_failure_pct") or 20) / 100.0}
        except ValueError:
            return bad("发布计划中的数字无效。")
        try:
            rid = console.start_rollout(raw, plan)
        except RolloutError as e:
            return bad(f"配置包被拒绝：{e.reason}（{e.detail}）", 422)
        log.info("rollout started from the console", extra={"rollout": rid, "account": g.user.account})
        return redirect(url_for("web.rollout", rollout_id=rid))

    @bp.post("/bundles")
    def push_bundle() -> Any:
        """A bundle to all its targets at once (no stages): for an urgent fix the administrators signed."""
        denied = operator()
        if denied:
            return denied
        f = request.files.get("bundle")
        raw = f.read() if f else b""
        try:
            out = console.push_bundle(raw)
        except RolloutError as e:
            rows = [console.rollouts.status(r["id"]) for r in reversed(console.db.rollouts())]
            return render_template("console/rollouts.html", rollouts=[r for r in rows if r],
                                   error=f"配置包被拒绝：{e.reason}（{e.detail}）"), 422
        log.info("bundle pushed from the console", extra={"version": out["version"], "account": g.user.account})
        flash(f"版本 {out['version']} 已下发到 {', '.join(out['targets'])}（不分批）。")
        return redirect(url_for("web.rollouts"))

    @bp.get("/rollouts/<rollout_id>")
    def rollout(rollout_id: str) -> Any:
        st = console.rollouts.status(rollout_id)
        if st is None:
            abort(404)
        members = console.db.members(rollout_id)
        acks = console.db.latest_acks(st["version"], list(members))
        problems = sorted(({"kiosk_id": k, "stage": members[k], **a} for k, a in acks.items()
                           if a.get("result") != "applied"), key=lambda a: (a["stage"], a["kiosk_id"]))[:100]
        return render_template("console/rollout.html", r=st, problems=problems)

    @bp.post("/rollouts/<rollout_id>/<action>")
    def rollout_action(rollout_id: str, action: str) -> Any:
        denied = operator()
        if denied:
            return denied
        fn = {"pause": console.rollouts.pause, "resume": console.rollouts.resume,
              "abort": console.rollouts.abort}.get(action)
        if fn is None:
            abort(404)
        try:
            fn(rollout_id)
        except RolloutError as e:
            if e.reason == "unknown_rollout":
                abort(404)
            flash(f"无法执行：{e.detail}")
        return redirect(url_for("web.rollout", rollout_id=rollout_id))

    # ------------------------------------------------------------------ commands
    @bp.get("/commands")
    def commands() -> Any:
        return render_template("console/commands.html", commands=queries.recent_commands(console.db))

    @bp.post("/commands")
    def upload_command() -> Any:
        denied = operator()
        if denied:
            return denied
        f = request.files.get("command")
        raw = f.read() if f else b""
        if not raw:
            return render_template("console/commands.html", commands=queries.recent_commands(console.db),
                                   error="请选择已签名的命令文件。"), 400
        try:
            out = console.upload_command(raw)
        except RolloutError as e:
            return render_template("console/commands.html", commands=queries.recent_commands(console.db),
                                   error=f"命令被拒绝：{e.reason}（{e.detail}）"), 422
        log.info("command uploaded from the console", extra={"command": out["id"], "account": g.user.account})
        return redirect(url_for("web.command", command_id=out["id"]))

    @bp.get("/commands/<command_id>")
    def command(command_id: str) -> Any:
        c = console.db.command(command_id)
        if c is None:
            abort(404)
        return render_template("console/command.html", c=c)

    @bp.get("/commands/<command_id>/<kiosk_id>/<kind>")
    def command_data(command_id: str, kiosk_id: str, kind: str) -> Any:
        """A result's payload: the screenshot (png) or the diagnostics bundle (tar.gz)."""
        c = console.db.command(command_id)
        field, mime, name = {"png": ("png_b64", "image/png", "screenshot.png"),
                             "diagnostics": ("bundle_b64", "application/gzip", "qhb-diagnose.tar.gz")}.get(
            kind, (None, "", ""))
        res = next((r for r in (c or {}).get("results", []) if r["kiosk_id"] == kiosk_id), None)
        if field is None or res is None or not isinstance(res["data"].get(field), str):
            abort(404)
        try:
            body = base64.b64decode(res["data"][field], validate=True)
        except (binascii.Error, ValueError):
            abort(404)
        disp = "inline" if kind == "png" else "attachment"
        return Response(body, mimetype=mime,
                        headers={"Content-Disposition": f'{disp}; filename="{kiosk_id}-{name}"'})

    @bp.app_errorhandler(404)
    def _not_found(_e: Any) -> Any:
        if request.path.startswith("/api/"):
            return {"error": "not found"}, 404
        return render_template("console/error.html", title="未找到", message="没有这个页面或对象。"), 404

    app.register_blueprint(bp)
    return session_ok
