"""E-licences (电子证照) instead of paper: fetched from the provincial library for a material of the visit.

A catalog material that names a licence type (``Material.licence_type``) can be given as an
e-licence: the citizen shows the licence's QR code in the 爱山东 app (the QR scanner, while the
materials screen offers the fetch), or agrees on screen (「同意调取」) that the kiosk fetches the
identified citizen's licence of that type. Nothing is fetched without one of the two.

The fetch runs in the background with the visit token; the answer comes back as a
``licence_result`` event: the licence as the screen shows it (holder masked) or a plain reason
(kiosk.domain.elicence.reason_message) after which the screen offers the camera. The visit keeps
only the reference, the type and the masked display values (kiosk.domain.session.FetchedLicence);
the session wipe drops them with the rest of the visit. The application carries
``licences: [{licence_ref, licence_type, material}]`` (``application_licences``) instead of photos.
"""
from __future__ import annotations

import logging
from typing import Any

from kiosk.app.common import id_type, platform_message
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.domain.elicence import LICENCE_REASONS, licence_name, masked_holder, reason_message
from kiosk.domain.identity import mask_id_number
from kiosk.domain.session import FetchedLicence, SessionData
from kiosk.ports.platform import LicenceRefused

__all__ = ["LicenceService", "LISTEN_KEY", "application_licences"]

log = logging.getLogger(__name__)

#: ``ctx.listening`` holds this while the materials screen offers a fetch (a scanned e-licence QR counts)
LISTEN_KEY = "licence"
_MATERIAL = "licence_material"  # per-visit scratch: the material the offer is for (not personal)


@logged_entry_points
class LicenceService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ what can be fetched
    def licence_type_for(self, material: str) -> str | None:
        """The licence type that can stand in for ``material`` of the current item, or None."""
        it = self.ctx.current_item
        if it is None:
            return None
        for m in it.materials:
            if m.name == material:
                return m.licence_type
        return None

    def licence_name_for(self, material: str) -> str:
        lt = self.licence_type_for(material)
        return licence_name(lt) if lt else ""

    # ------------------------------------------------------------------ the offer (QR scanning listens)
    def offer(self, material: str) -> None:
        """The materials screen offers the fetch for ``material``: a scanned e-licence QR is taken for it."""
        if self.licence_type_for(material) is None:
            self.withdraw()
            return
        self.ctx.scratch[_MATERIAL] = material
        self.ctx.listening.add(LISTEN_KEY)

    def withdraw(self) -> None:
        """The offer is gone (the camera was chosen, or the screen left): a scanned e-licence is ignored."""
        self.ctx.listening.discard(LISTEN_KEY)
        self.ctx.scratch.pop(_MATERIAL, None)

    def on_code(self, token: int, payload: dict[str, Any]) -> None:
        """A scanned code while the offer is open (device thread; IdentifyService routes it here)."""
        ctx = self.ctx
        material = ctx.scratch.get(_MATERIAL)
        if LISTEN_KEY not in ctx.listening or not material:
            return
        refused = payload.get("refused")
        if refused:  # malformed or expired e-licence QR (refused by the core before anything is sent)
            reason = str(refused.get("reason") or "bad_elicence")
            message = reason_message(reason) if reason in LICENCE_REASONS else str(refused.get("message") or "")
            ctx.post_for(token, "licence_result", ok=False, material=material, reason=reason,
                         message=message or reason_message("bad_elicence"))
            return
        if payload.get("kind") != "elicence":
            ctx.post_for(token, "licence_result", ok=False, material=material, reason="bad_elicence",
                         message="这不是电子证照二维码。" + reason_message("bad_elicence"))
            return
        if ctx.post_for(token, "licence_fetching", material=material):  # the network waits off this thread
            ctx.in_background(self._fetch, material, {"method": "qr", "qr_payload": str(payload.get("value") or "")})

    # ------------------------------------------------------------------ fetch by type, with consent
    def fetch_with_consent(self, material: str, consent: bool) -> bool:
        """「同意调取」: fetch the identified citizen's licence for ``material``. Without consent nothing is
        fetched (False). The answer comes as a ``licence_result`` event."""
        lt = self.licence_type_for(material)
        if not consent or lt is None:
            return False
        self.ctx.in_background(self._fetch_by_type, material, lt)
        return True

    def _fetch_by_type(self, token: int, material: str, licence_type: str) -> None:
        self._fetch(token, material, {"method": "holder", "licence_type": licence_type})

    # ------------------------------------------------------------------ the fetch (background)
    def _fetch(self, token: int, material: str, request: dict[str, Any]) -> None:
        ctx = self.ctx
        want = self.licence_type_for(material)
        ident = ctx.for_visit(token, lambda: ctx.session.data.identity)
        if ident is None or not getattr(ident, "id_number", ""):
            ctx.post_for(token, "licence_result", ok=False, material=material, reason="no_identity",
                         message="请先刷身份证或扫居民码确认身份，再调取电子证照")
            return
        body = {**request, "holder": {"id_type": id_type(ident), "id_number": ident.id_number}, "consent": True}
        try:
            lic = ctx.require_platform().fetch_licence(body)
        except LicenceRefused as e:
            log.info("e-licence fetch refused: %s", e.code)
            ctx.post_for(token, "licence_result", ok=False, material=material, reason=e.code,
                         message=reason_message(e.code))
            return
        except Exception as e:  # noqa: BLE001 - told to the citizen (camera offered), logged for the technician
            log.warning("e-licence fetch failed", exc_info=True)
            ctx.post_for(token, "licence_result", ok=False, material=material, reason="unavailable",
                         message=platform_message(e))
            return
        got = str(lic.get("licence_type") or "")
        if want is not None and got != want:
            ctx.post_for(token, "licence_result", ok=False, material=material, reason="wrong_type",
                         message=f"这是{licence_name(got)}，这份材料需要{licence_name(want)}。"
                                 "请出示正确的电子证照，或拍照上传")
            return
        shown = self._shown(lic)
        fetched = FetchedLicence(material, str(lic["licence_ref"]), got, shown)
        ctx.session.add_licence(fetched, token=token)  # VisitEnded when the citizen has gone meanwhile
        ctx.post_for(token, "licence_result", ok=True, material=material, licence=dict(shown))

    @staticmethod
    def _shown(lic: dict[str, Any]) -> dict[str, str]:
        """What the screen shows: type, number, validity, the holder masked (a number that carries the
        holder's ID number, as a resident ID card's does, is masked with the same rule)."""
        holder = lic.get("holder") or {}
        hid = str(holder.get("id_number") or "")
        number = str(lic.get("number") or "")
        if hid and hid in number:
            number = mask_id_number(number)
        until = lic.get("valid_until")
        return {"name": str(lic.get("licence_name") or licence_name(str(lic.get("licence_type") or ""))),
                "number": number, "valid_from": str(lic.get("valid_from") or ""),
                "valid_until": str(until) if until else "长期", "holder": masked_holder(holder.get("name"), hid),
                "issuer": str(lic.get("issuer") or "")}

    # ------------------------------------------------------------------ what the visit holds
    def fetched(self, material: str) -> dict[str, str] | None:
        """The display values of the licence fetched for ``material`` in this visit, or None."""
        for x in self.ctx.session.data.licences:
            if x.material == material:
                return dict(x.shown)
        return None

    def discard(self, material: str) -> None:
        """The citizen wants another licence or a photo instead: the fetched one is dropped."""
        self.ctx.session.drop_licence(material)

    def application_licences(self) -> list[dict[str, str]]:
        return application_licences(self.ctx.session.data)


def application_licences(data: SessionData) -> list[dict[str, str]]:
    """The application's ``licences``: references only (docs/platform-api.yaml ApplicationRequest)."""
    return [{"licence_ref": x.licence_ref, "licence_type": x.licence_type, "material": x.material}
            for x in data.licences]
