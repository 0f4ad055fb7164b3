"""Bundle format and the verifier's reason codes, including property tests of the parser."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.fleet.bundle import (
    add_signature,
    build_signed,
    parse_bundle,
    public_key_string,
    sign,
    signing_payload,
)
from kiosk.fleet.pushable import forbidden_keys, is_pushable
from kiosk.fleet.verify import REASONS, TrustPolicy, verify_bundle

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CFG = {"catalog": {"disabled": ["ITEM-1"]}, "ui": {"idle_timeout_s": 120}}


def policy(keys, threshold=1, kiosk_id="qhb-a", group="zhoucun", max_bytes=262144):
    return TrustPolicy.create([public_key_string(k.public_key()) for k in keys], threshold, kiosk_id, group, max_bytes)


def make(keys, version=5, targets=("group:zhoucun",), config=CFG, **kw) -> bytes:
    kw.setdefault("expires", NOW + timedelta(days=7))
    kw.setdefault("issued_at", NOW)
    return sign(build_signed(config, version, list(targets), **kw), keys).to_bytes()


def test_good_bundle_accepted(admin_keys):
    v = verify_bundle(make(admin_keys[:1]), policy(admin_keys[:1]), 4, now=NOW)
    assert (v.accepted, v.reason, v.version) == (True, "ok", 5)
    assert v.bundle.config == CFG


def test_signature_survives_reserialisation(admin_keys):
    raw = make(admin_keys[:1])
    doc = json.loads(raw)
    compact = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()  # different bytes, same content
    assert verify_bundle(compact, policy(admin_keys[:1]), 0, now=NOW).accepted


def test_tampered_content_is_bad_signature(admin_keys):
    doc = json.loads(make(admin_keys[:1]))
    doc["signed"]["config"]["catalog"]["disabled"] = []
    v = verify_bundle(json.dumps(doc).encode(), policy(admin_keys[:1]), 0, now=NOW)
    assert (v.accepted, v.reason) == (False, "bad_signature")


def test_forged_signature_claiming_pinned_key(admin_keys):
    forger = Ed25519PrivateKey.generate()
    doc = json.loads(make([forger]))
    doc["signatures"][0]["keyid"] = public_key_string(admin_keys[0].public_key())
    assert verify_bundle(json.dumps(doc).encode(), policy(admin_keys[:1]), 0, now=NOW).reason == "bad_signature"


def test_unknown_key(admin_keys):
    assert verify_bundle(make([Ed25519PrivateKey.generate()]), policy(admin_keys[:1]), 0, now=NOW).reason == "unknown_key"


def test_threshold_counts_distinct_pinned_keys(admin_keys):
    pol = policy(admin_keys, threshold=2)
    one = make(admin_keys[:1])
    assert verify_bundle(one, pol, 0, now=NOW).reason == "below_threshold"
    doc = json.loads(one)
    doc["signatures"].append(dict(doc["signatures"][0]))  # the same key twice is still one key
    assert verify_bundle(json.dumps(doc).encode(), pol, 0, now=NOW).reason == "below_threshold"
    two = add_signature(parse_bundle(one), admin_keys[1]).to_bytes()
    assert verify_bundle(two, pol, 0, now=NOW).accepted
    outsider = add_signature(parse_bundle(one), Ed25519PrivateKey.generate()).to_bytes()
    assert verify_bundle(outsider, pol, 0, now=NOW).reason == "below_threshold"


def test_no_signatures(admin_keys):
    doc = json.loads(make(admin_keys[:1]))
    doc["signatures"] = []
    assert verify_bundle(json.dumps(doc).encode(), policy(admin_keys[:1]), 0, now=NOW).reason == "below_threshold"


def test_validity_window(admin_keys):
    pol = policy(admin_keys[:1])
    exp = make(admin_keys[:1], expires=NOW - timedelta(seconds=1))
    assert verify_bundle(exp, pol, 0, now=NOW).reason == "expired"
    early = make(admin_keys[:1], not_before=NOW + timedelta(hours=1))
    assert verify_bundle(early, pol, 0, now=NOW).reason == "not_yet_valid"
    assert verify_bundle(early, pol, 0, now=NOW + timedelta(hours=2)).accepted


def test_rollback_and_replay(admin_keys):
    pol = policy(admin_keys[:1])
    raw = make(admin_keys[:1], version=5)
    assert verify_bundle(raw, pol, 5, now=NOW).reason == "rollback"
    assert verify_bundle(raw, pol, 9, now=NOW).reason == "rollback"


@pytest.mark.parametrize("targets,ok", [
    (["all"], True), (["group:zhoucun"], True), (["kiosk:qhb-a"], True),
    (["group:boshan", "kiosk:qhb-a"], True), (["group:boshan"], False), (["kiosk:qhb-b"], False),
])
def test_targets(admin_keys, targets, ok):
    v = verify_bundle(make(admin_keys[:1], targets=targets), policy(admin_keys[:1]), 0, now=NOW)
    assert v.accepted is ok and (ok or v.reason == "not_targeted")


def test_invalid_content_uses_check(admin_keys):
    raw = make(admin_keys[:1], config={"ui": {"idle_timeout_s": -1}})
    v = verify_bundle(raw, policy(admin_keys[:1]), 0, now=NOW, content_check=lambda c: "ui.idle_timeout_s: too small")
    assert (v.reason, v.detail) == ("invalid_content", "ui.idle_timeout_s: too small")


def test_too_large(admin_keys):
    raw = make(admin_keys[:1], config={"announcements": [{"text": "通知" * 200}] * 50})
    assert verify_bundle(raw, policy(admin_keys[:1], max_bytes=4096), 0, now=NOW).reason == "too_large"


@pytest.mark.parametrize("raw", [
    b"", b"\xff\xfe", b"[]", b"null", b'{"format": "other"}', b'{"format": "qhb-config-bundle/1"}',
    b'{"format":"qhb-config-bundle/1","signed":{"version":1.5,"targets":["all"],"config":{}},"signatures":[]}',
    b'{"format":"qhb-config-bundle/1","signed":{"version":1,"targets":["everyone"],"config":{}},"signatures":[]}',
    b'{"format":"qhb-config-bundle/1","signed":{"version":1,"targets":["all"],"config":{"x":NaN}},"signatures":[]}',
    b'{"format":"qhb-config-bundle/1","signed":{"version":1,"targets":["all"],"config":{}},"signatures":[{"keyid":"k","sig":"!!"}]}',
    b'{"format":"qhb-config-bundle/1","signed":{"version":1,"targets":["all"],"config":{},"expires":"soon"},"signatures":[]}',
    b'{"format":"qhb-config-bundle/1","signed":{"version":1,"targets":["all"],"config":{},"evil":1},"signatures":[]}',
    b"[" * 100000,
])
def test_malformed(admin_keys, raw):
    v = verify_bundle(raw, policy(admin_keys[:1]), 0, now=NOW)
    assert (v.accepted, v.reason) == (False, "malformed")


def test_payload_is_domain_separated(admin_keys):
    b = parse_bundle(make(admin_keys[:1]))
    assert b.payload().startswith(b"qhb-config-bundle/1\n")
    assert signing_payload(b.signed) == b.payload()


# ------------------------------------------------------------ property tests
json_scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20) | \
    st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_parser_never_crashes_on_bytes(admin_keys, data):
    v = verify_bundle(data, policy(admin_keys[:1]), 0, now=NOW)
    assert not v.accepted and v.reason in REASONS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=json_values)
def test_any_json_is_classified_never_accepted(admin_keys, doc):
    v = verify_bundle(json.dumps(doc).encode(), policy(admin_keys[:1]), 0, now=NOW)
    assert not v.accepted and v.reason in REASONS


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=5),
       version=st.integers(1, 2**53 - 1))
def test_round_trip_any_config(admin_keys, config, version):
    raw = make(admin_keys[:1], version=version, config=config)
    b = parse_bundle(raw)
    assert (b.version, b.config) == (version, config)
    v = verify_bundle(raw, policy(admin_keys[:1]), version - 1, now=NOW)
    assert v.accepted if not forbidden_keys(config) else v.reason == "forbidden_key"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_bit_flip_in_signed_bytes_is_refused(admin_keys, pos, bit):
    raw = bytearray(make(admin_keys[:1], version=3))
    i = pos % len(raw)
    raw[i] ^= 1 << bit
    v = verify_bundle(bytes(raw), policy(admin_keys[:1]), 0, now=NOW)
    if v.accepted:  # only harmless changes (e.g. whitespace -> other whitespace) may still verify
        assert parse_bundle(bytes(raw)).signed == parse_bundle(make(admin_keys[:1], version=3)).signed
    else:
        assert v.reason in REASONS


# ------------------------------------------------------------ issue 11: what a bundle may be
def test_expiry_is_required(admin_keys):
    pol = policy(admin_keys[:1])
    v = verify_bundle(make(admin_keys[:1], expires=None), pol, 0, now=NOW)
    assert (v.accepted, v.reason) == (False, "expiry_required")
    doc = json.loads(make(admin_keys[:1]))  # issued_at removed (and re-signed): nothing to measure from
    del doc["signed"]["issued_at"]
    raw = sign(doc["signed"], admin_keys[:1]).to_bytes()
    assert verify_bundle(raw, pol, 0, now=NOW).reason == "expiry_required"


def test_expiry_at_most_30_days_after_signing(admin_keys):
    pol = policy(admin_keys[:1])
    assert verify_bundle(make(admin_keys[:1], expires=NOW + timedelta(days=30)), pol, 0, now=NOW).accepted
    v = verify_bundle(make(admin_keys[:1], expires=NOW + timedelta(days=30, seconds=1)), pol, 0, now=NOW)
    assert (v.accepted, v.reason) == (False, "expiry_too_long") and "30 days" in v.detail
    # a signed issued_at in the future cannot stretch the window past 30 days from the kiosk's clock
    later = NOW + timedelta(days=300)
    v = verify_bundle(make(admin_keys[:1], issued_at=later, expires=later + timedelta(days=1)), pol, 0, now=NOW)
    assert v.reason == "expiry_too_long"


SECURITY_KEYS = [
    ({"ui": {"production": False}}, "ui.production"),
    ({"ui": {"technician_pin": "1"}}, "ui.technician_pin"),
    ({"ui": {"technician_pin_hash": ""}}, "ui.technician_pin_hash"),
    ({"ui": {"fullscreen": False}}, "ui.fullscreen"),
    ({"platform": {"base_url": "http://evil.example"}}, "platform.base_url"),
    ({"platform": {"verify_tls": False}}, "platform.verify_tls"),
    ({"platform": {"ca_bundle": "/tmp/ca.pem"}}, "platform.ca_bundle"),
    ({"platform": {"credentials_file": "/tmp/c"}}, "platform.credentials_file"),
    ({"platform": {"embedded_simulator": True}}, "platform.embedded_simulator"),
    ({"storage": {"key_file": "/tmp/k"}}, "storage.key_file"),
    ({"storage": {"data_dir": "/tmp"}}, "storage.data_dir"),
    ({"logging": {"dir": "/proc/x"}}, "logging.dir"),
    ({"fleet": {"enabled": False}}, "fleet.enabled"),
    ({"fleet": {"broker_url": "mqtt://evil:1883"}}, "fleet.broker_url"),
    ({"fleet": {"admin_keys": []}}, "fleet.admin_keys"),
    ({"fleet": {"threshold": 1}}, "fleet.threshold"),
    ({"fleet": {"min_version": 0}}, "fleet.min_version"),
    ({"kiosk": {"id": "qhb-other"}}, "kiosk.id"),
    ({"kiosk": {"group": "boshan"}}, "kiosk.group"),
    ({"devices": {"printer": {"driver": "simulated"}}}, "devices.printer.driver"),
    ({"devices": {"qr": {"grab": False}}}, "devices.qr.grab"),
    ({"devices": {"idcard": {"port": "/dev/ttyS9"}}}, "devices.idcard.port"),
    ({"devices": {"printer": {"out_dir": "/tmp"}}}, "devices.printer.out_dir"),
    ({"devices": {"qr": {"url_allow_list": ["http://evil"]}}}, "devices.qr.url_allow_list"),
    ({"devices": {"camera": {"face_cascade": "/tmp/x.xml"}}}, "devices.camera.face_cascade"),
    ({"catalog": {"path": "/tmp/cat"}}, "catalog.path"),
    ({"ui.production": False}, "ui.production"),  # a dotted TOML key is not a way round the nesting
    ({"nonsense": {"a": 1}}, "nonsense.a"),
]


@pytest.mark.parametrize("config,key", SECURITY_KEYS, ids=[k for _, k in SECURITY_KEYS])
def test_security_relevant_keys_are_forbidden(admin_keys, config, key):
    cfg = {"announcements": [{"text": "公告"}], **config}
    v = verify_bundle(make(admin_keys[:1], config=cfg), policy(admin_keys[:1]), 0, now=NOW)
    assert (v.accepted, v.reason) == (False, "forbidden_key")
    assert key in v.detail and "announcements" not in v.detail


def test_pushable_keys_pass(admin_keys):
    cfg = {"announcements": [{"text": "公告"}], "catalog": {"disabled": ["A"], "most_used": ["B"]},
           "hours": {"self_service_24h": False, "staffed": []}, "calendar": {"holidays": ["2026-12-31"]},
           "ui": {"idle_timeout_s": 60, "idle_warning_s": 10, "elderly_idle_timeout_s": 200, "voice": False,
                  "voice_backend": "none", "elderly_mode": True, "items_per_page": 4, "elderly_items_per_page": 2},
           "kiosk": {"station_name": "站", "helper_phone": "0533-1", "service_phone": "12345", "brand": "齐好办"},
           "logging": {"level": "DEBUG"}, "platform": {"read_timeout_s": 9, "connect_timeout_s": 2},
           "devices": {"printer": {"paper_mm": 58, "timeout_s": 3},
                       "camera": {"jpeg_max_kb": 300, "quality_blur_min": 40}}}
    assert verify_bundle(make(admin_keys[:1], config=cfg), policy(admin_keys[:1]), 0, now=NOW).accepted
    assert is_pushable("devices.qr.dedupe_window_s") and not is_pushable("devices.qr.driver")


def test_min_version_is_a_rollback_floor(admin_keys):
    pol = policy(admin_keys[:1])
    raw = make(admin_keys[:1], version=5)
    assert verify_bundle(raw, pol, 0, now=NOW, min_version=5).accepted  # min_version itself is accepted
    v = verify_bundle(raw, pol, 0, now=NOW, min_version=6)
    assert (v.accepted, v.reason) == (False, "rollback") and "min_version" in v.detail


def _respell(pub: str) -> str:
    """The same raw key, spelled differently (prefix case, white space inside the base64)."""
    body = pub.split(":", 1)[1]
    return "ED25519:" + body[:10] + " " + body[10:]


def test_threshold_counts_distinct_raw_keys(admin_keys):
    pub = public_key_string(admin_keys[0].public_key())
    pol = TrustPolicy.create([pub, _respell(pub)], 2, "qhb-a", "zhoucun")
    assert len(pol.admin_keys) == 1  # two spellings of one key are one key
    one = make(admin_keys[:1])
    assert verify_bundle(one, pol, 0, now=NOW).reason == "below_threshold"
    doc = json.loads(one)  # the same signature again under the other spelling of its key
    doc["signatures"].append({"keyid": _respell(pub), "sig": doc["signatures"][0]["sig"]})
    v = verify_bundle(json.dumps(doc).encode(), pol, 0, now=NOW)
    assert (v.accepted, v.reason) == (False, "below_threshold")
    # a signature naming a pinned key in another spelling still counts for that key
    two = TrustPolicy.create([pub, public_key_string(admin_keys[1].public_key())], 2, "qhb-a", "zhoucun")
    doc = json.loads(add_signature(parse_bundle(one), admin_keys[1]).to_bytes())
    doc["signatures"][0]["keyid"] = _respell(doc["signatures"][0]["keyid"])
    assert verify_bundle(json.dumps(doc).encode(), two, 0, now=NOW).accepted
