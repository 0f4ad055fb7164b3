"""Sample payloads shared by platform and outbox tests (synthetic people only)."""
from __future__ import annotations

import datetime as _dt
import random

from kiosk.domain.identity import check_digit

ITEM = "QHB-RS-001"  # 无就业经历人员失业登记: phone, education (choice), address


def id_number(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    birth = _dt.date(1950, 1, 1) + _dt.timedelta(days=rng.randrange(0, 20000))
    first17 = "370306" + birth.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
    return first17 + check_digit(first17)


def phone(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    return "139" + "".join(str(rng.randrange(10)) for _ in range(8))


def applicant(rng: random.Random | None = None, name: str = "张三丰") -> dict:
    rng = rng or random.Random()
    return {"id_type": "resident_id", "id_number": id_number(rng), "name": name, "phone": phone(rng)}


def form(app: dict) -> dict:
    return {"phone": app["phone"], "education": "本科及以上", "address": "淄博市周村区城北路1号"}


def application_payload(rng: random.Random | None = None, name: str = "张三丰") -> dict:
    a = applicant(rng, name)
    return {"item_code": ITEM, "applicant": a, "form": form(a)}


def application_body(kiosk_id: str, materials=(), rng=None, local_no: str = "LQTEST") -> dict:
    p = application_payload(rng)
    return {**p, "materials": list(materials), "kiosk_id": kiosk_id,
            "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "local_tracking_no": local_no}
