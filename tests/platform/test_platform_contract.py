"""The simulator against docs/platform-api.yaml with schemathesis (a bounded number of examples per operation).

Requests are signed by a requests auth hook, so the checks reach the real handlers
rather than stopping at 401.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from kiosk.platform import signing
from kiosk.platform.credentials import configured_credentials
from standins.platform_sim import start_in_thread

SPEC = Path(__file__).resolve().parents[2] / "docs" / "platform-api.yaml"
FULL = os.environ.get("KIOSK_TEST_FULL") == "1"
# The default run keeps to the fuzzing phase with a few examples per operation; the full run adds the
# coverage phase (boundary and negative values for every field).
schema = schemathesis.openapi.from_path(str(SPEC), config=schemathesis.Config.from_dict(
    {"phases": {"coverage": {"enabled": FULL}, "stateful": {"enabled": False}}}))


class SignedAuth(requests.auth.AuthBase):
    def __init__(self, creds):
        self.creds = creds

    def __call__(self, r):
        body = r.body.encode() if isinstance(r.body, str) else (r.body or b"")
        r.headers.update(signing.sign_headers(self.creds.kiosk_id, self.creds.secret, r.method, r.path_url, body))
        return r


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    h = start_in_thread(tmp_path_factory.mktemp("contract"), seed=5)
    s = requests.Session()
    s.auth = SignedAuth(configured_credentials())
    yield h.url, s
    s.close()
    h.stop()


CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


@schema.parametrize()
@settings(max_examples=60 if FULL else 8, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_simulator_conforms_to_the_contract(case, live):
    url, session = live
    response = case.call(base_url=url, session=session)
    case.validate_response(response, checks=CHECKS)


def test_spec_documents_every_simulator_route():
    import yaml
    paths = set(yaml.safe_load(SPEC.read_text("utf-8"))["paths"])
    assert paths == {
        "/v1/applications", "/v1/applications/search", "/v1/applications/{tracking_no}", "/v1/materials/{sha256}",
        "/v1/catalog", "/v1/evaluations", "/v1/help-requests", "/v1/home-visits", "/v1/identity/verify",
        "/v1/certificates/{kind}", "/v1/payments", "/v1/payments/{payment_id}", "/v1/health",
        "/v1/licences/fetch", "/v1/real-estate/search"}


def test_health_is_in_the_contract_and_tiny():
    import yaml
    spec = yaml.safe_load(SPEC.read_text("utf-8"))
    op = spec["paths"]["/v1/health"]["get"]
    assert op["operationId"] == "getHealth" and "security" not in op  # signed: the global kioskSignature applies
    health = spec["components"]["schemas"]["Health"]
    assert set(health["properties"]) == {"status", "server_time"} and health["additionalProperties"] is False
