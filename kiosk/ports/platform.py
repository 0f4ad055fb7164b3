"""The provincial platform as the application and the drainer see it: calls and the two error classes.

Every call either answers or raises one of the two errors: `RetryableError` (the
network, a 5xx, a 429: try again later, nothing is lost) or `PermanentError` (the
platform refused this request: retrying would get the same answer).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["PlatformError", "RetryableError", "PermanentError", "PlatformPort", "LicenceRefused",
           "LICENCE_REFUSALS"]


class PlatformError(Exception):
    """Base of both classes; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


class RetryableError(PlatformError):
    def __init__(self, message: str, *, status: int | None = None, code: str = "", retry_after: float | None = None):
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class PermanentError(PlatformError):
    def __init__(self, message: str, *, status: int | None = None, code: str = "", detail: str = "",
                 errors: Mapping[str, str] | None = None):
        super().__init__(message, status=status, code=code)
        self.detail = detail
        self.errors = dict(errors or {})

    def reason(self) -> str:
        """One line for the dead-letter table and the station helper: detail plus field messages."""
        parts = [self.detail or f"平台拒绝（{self.status} {self.code}）".strip()]
        parts += [f"{k}: {v}" for k, v in self.errors.items()]
        return "；".join(p for p in parts if p)


#: The platform's refusals of a licence fetch, as plain reason codes (kiosk.domain.elicence.LICENCE_REASONS
#: has the citizen's sentence for each); anything else stays a PermanentError.
LICENCE_REFUSALS = ("unknown_licence", "expired", "revoked", "not_holder", "qr_expired", "consent_required")


class LicenceRefused(PermanentError):
    """The e-licence library answered but will not give this licence; ``code`` is one of LICENCE_REFUSALS."""

    def __init__(self, code: str, *, status: int | None = None, detail: str = ""):
        super().__init__(f"licence refused ({code})", status=status, code=code, detail=detail)


class PlatformPort(Protocol):
    """What the kiosk asks of the platform (kiosk.platform.client.PlatformClient implements it)."""

    base_url: str
    kiosk_id: str  # the kiosk's identity at the platform (the drainer stamps it on every request)
    #: clock time (the client's clock) of the last call the platform answered (2xx/304, or a 4xx refusal):
    #: the station's "online" comes from this, so a busy kiosk never needs a probe
    last_contact: float | None
    #: clock time of the last call that failed to reach it (network, timeout, 5xx/408/429, unreadable answer)
    last_failure: float | None
    #: whether the most recent call got an answer (None: no call yet); a failed real call makes it False at once
    reachable: bool | None

    def close(self) -> None: ...

    def close_idle_connections(self, idle_s: float) -> bool:
        """Close kept-alive connections no call used for `idle_s` (True when it did)."""
        ...

    def submit_application(self, body: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]: ...

    def put_material(self, sha256: str, content: bytes) -> dict[str, Any]: ...

    def get_application(self, tracking_no: str) -> dict[str, Any]: ...

    def search_applications(self, id_type: str, id_number: str) -> list[dict[str, Any]]: ...

    def get_catalog(self, etag: str | None = None) -> tuple[str | None, dict[str, Any] | None]: ...

    def submit_evaluation(self, body: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]: ...

    def submit_help_request(self, body: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]: ...

    def book_home_visit(self, body: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]: ...

    def verify_identity(self, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def get_certificate(self, kind: str, identity_token: str) -> dict[str, Any]: ...

    def create_payment(self, body: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]: ...

    def get_payment(self, payment_id: str) -> dict[str, Any]: ...

    def fetch_licence(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v1/licences/fetch: an e-licence by ``qr_payload`` or ``licence_type`` for ``holder``, with
        ``consent``. Returns {licence_ref, licence_type, licence_name, number, holder, issuer, valid_from,
        valid_until, status}; raises LicenceRefused (``code``) when the library will not give it."""
        ...

    def search_real_estate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v1/real-estate/search with {by, value} (kiosk.domain.real_estate.PropertyQuery.as_body()):
        {by, value, as_of, results: [{unit_number, certificate_number, address, area_m2, use, right_type,
        restrictions: [{kind, registered_on, note}], ...}]}: public information, never the owner."""
        ...

    def health(self) -> dict[str, Any]:
        """GET /v1/health: the cheap probe, used only after a quiet spell with no other contact."""
        ...
