"""MQTT topics and client construction shared by the kiosk agent and kiosk-admin.

Topics:
  qhb/config/all, qhb/config/group/{group}, qhb/config/kiosk/{id}   retained signed bundles
  qhb/kiosk/{id}/ack      retained: outcome of the last bundles seen (with a short history)
  qhb/kiosk/{id}/health   retained: periodic health report
  qhb/kiosk/{id}/status   retained: {"online": true|false}; the last will sets false
"""
from __future__ import annotations

import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

CONFIG_ALL = "qhb/config/all"


def config_topics(kiosk_id: str, group: str) -> list[str]:
    return [CONFIG_ALL, f"qhb/config/group/{group}", f"qhb/config/kiosk/{kiosk_id}"]


def topic_for_target(target: str) -> str:
    if target == "all":
        return CONFIG_ALL
    kind, _, name = target.partition(":")
    return f"qhb/config/{kind}/{name}"


def ack_topic(kiosk_id: str) -> str:
    return f"qhb/kiosk/{kiosk_id}/ack"


def health_topic(kiosk_id: str) -> str:
    return f"qhb/kiosk/{kiosk_id}/health"


def status_topic(kiosk_id: str) -> str:
    return f"qhb/kiosk/{kiosk_id}/status"


@dataclass
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """mqtt://host[:1883], mqtts://host[:8883]; optional user:password@ (admin convenience)."""
        u = urlparse(url if "://" in url else f"mqtt://{url}")
        if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not u.hostname:
            raise ValueError(f"broker URL {url!r} must look like mqtt://host:1883 or mqtts://host:8883")
        tls = u.scheme in ("mqtts", "ssl")
        return cls(u.hostname, u.port or (8883 if tls else 1883), tls,
                   unquote(u.username) if u.username else None, unquote(u.password) if u.password else None)


def make_client(
    url: str,
    *,
    client_id: str | None = None,
    username: str | None = None,
    password: str | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    clean_session: bool = True,
) -> tuple[mqtt.Client, BrokerAddress]:
    """A paho (callback API v2) client configured for `url`; not yet connected."""
    addr = BrokerAddress.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"qhb-{uuid.uuid4().hex[:12]}",
                         clean_session=clean_session, protocol=mqtt.MQTTv311)
    user = username or addr.username
    if user:
        client.username_pw_set(user, password if password is not None else addr.password)
    if addr.tls or tls_ca or tls_cert:
        client.tls_set(ca_certs=tls_ca, certfile=tls_cert, keyfile=tls_key, cert_reqs=ssl.CERT_REQUIRED,
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client, addr


def publish_retained(url: str, topics: list[str], raw: bytes, *, timeout: float = 30.0,
                     **client_kw: Any) -> list[str]:
    """Publish `raw` retained (QoS 1) on each topic and wait for the broker's confirmation."""
    client, addr = make_client(url, **client_kw)
    connected = threading.Event()
    refused: list[str] = []
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else refused.append(str(rc))
    client.connect(addr.host, addr.port, keepalive=30)
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while not connected.wait(0.1):
            if refused or time.monotonic() > deadline:
                raise ConnectionError(f"broker {url} did not accept the connection"
                                      + (f": {refused[0]}" if refused else ""))
        infos = [client.publish(t, raw, qos=1, retain=True) for t in topics]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise ConnectionError("the broker did not confirm the publication")
    finally:
        client.disconnect()
        client.loop_stop()
    return topics
