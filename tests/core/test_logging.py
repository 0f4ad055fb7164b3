import json
import logging

from kiosk.infra.logs import REDACTOR, setup_logging, tail


def test_log_file_never_holds_id_phone_or_session_name(tmp_path):
    path = setup_logging(tmp_path, level="INFO")
    REDACTOR.add("王小明")
    try:
        log = logging.getLogger("kiosk.test")
        log.info("card read for %s id=%s phone=%s", "王小明", "11010519491231002X", "13812345678")
        log.warning("payload", extra={"data": {"id_number": "34052419800101001X", "note": "王小明"}})
        try:
            raise ValueError("bad id 11010519491231002X")
        except ValueError:
            log.exception("failed")
        for h in logging.getLogger().handlers:
            h.flush()
    finally:
        REDACTOR.clear()
    raw = path.read_text("utf-8")
    for secret in ("11010519491231002X", "34052419800101001X", "13812345678", "王小明"):
        assert secret not in raw
    lines = [json.loads(x) for x in raw.splitlines()]
    assert lines[0]["msg"].startswith("card read for [redacted]")
    assert lines[1]["data"]["id_number"] == "[redacted]"
    assert "ValueError" in lines[2]["exc"]
    assert len(tail(path, 2)) == 2
