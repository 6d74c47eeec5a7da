"""The abuse table of issue 13, row by row, over real HTTP: each input refused or contained.

(Quotas have their own file, test_quotas.py; the decode-cost row is test_decode_cost.py;
anonymous /readyz is in test_health.py.)
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import time
from pathlib import Path

import pytest
from PIL import Image
from tests.integration.api.conftest import ROOMY_QUOTAS, write_api_topology
from tests.integration.api.test_backpressure import full_queue_topology

from growbin.api.config import ApiConfig
from growbin.scan.samples import sample_bytes

pytestmark = pytest.mark.integration


def raw_files(api, scan_id: str) -> list[Path]:
    return list((Path(api.settings.image_dir) / "scans" / scan_id).glob("raw.*"))


def test_a_dead_letter_age_too_large_for_a_date_is_422_not_500(api):
    admin = api.client(api.key("ops", "admin"))
    for age in ("99999999999d", "9999999d", "1e400d"):
        answer = admin.get("/v1/admin/dlq", params={"older_than": age})
        assert answer.status_code == 422, (age, answer.text)
        assert answer.headers["content-type"].startswith("application/json")
    assert admin.get("/v1/admin/dlq", params={"older_than": "36500d"}).status_code == 200


def test_metrics_are_served_to_admin_keys_only(api):
    anonymous = api.client().get("/metrics")
    user = api.client(api.key("alice")).get("/metrics")
    admin = api.client(api.key("ops", "admin")).get("/metrics")

    assert anonymous.status_code == 401
    assert user.status_code == 403
    assert admin.status_code == 200, admin.text
    assert admin.headers["content-type"].startswith("text/plain")
    assert "growbin_dead_letter_archive_up 1.0" in admin.text
    assert "# TYPE growbin_dead_letters gauge" in admin.text


def test_a_hint_with_a_c1_control_character_is_refused_like_a_c0_one(api):
    alice = api.client(api.key("alice"))
    photo = ("can.jpg", sample_bytes("can.jpg"))
    for hint in ("bottle\u009b31m", "bottle\x1b[31m"):
        answer = alice.post("/v1/scans", files={"image": photo}, data={"hint": hint})
        assert answer.status_code == 422, (hint, answer.text)
    answer = alice.post("/v1/scans", json={"image_url": "http://x.invalid/a.jpg", "hint": "\u0085"})
    assert answer.status_code == 422


def jpeg_with_gps_and_a_zip() -> bytes:
    image = Image.open(io.BytesIO(sample_bytes("can.jpg")))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif.get_ifd(0x8825)[2] = (37.0, 33.0, 59.0)  # GPSLatitude
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue() + b"PK\x03\x04secret-archive" + b"\0" * 64


def test_the_stored_original_has_no_gps_exif_and_no_appended_zip(api):
    data = jpeg_with_gps_and_a_zip()
    answer = api.client(api.key("alice")).post("/v1/scans", files={"image": ("a.jpg", data)})
    assert answer.status_code == 202, answer.text

    [raw] = raw_files(api, answer.json()["scan_id"])
    stored = raw.read_bytes()
    assert b"SecretCam" not in stored and b"PK\x03\x04" not in stored
    assert b"secret-archive" not in stored
    assert stored.endswith(b"\xff\xd9")
    assert Image.open(io.BytesIO(stored)).size == Image.open(io.BytesIO(data)).size


def test_a_scan_the_broker_refuses_leaves_no_photo_behind(start_api, broker_api, tmp_path):
    api = start_api(full_queue_topology(tmp_path, "classic"), broker_api=broker_api)
    alice = api.client(api.key("alice"))
    photo = {"image": ("can.jpg", sample_bytes("can.jpg"))}
    answers = [alice.post("/v1/scans", files=photo) for _ in range(3)]

    assert [a.status_code for a in answers] == [202, 202, 503]
    refused_id = answers[2].json()["scan_id"]
    assert raw_files(api, refused_id) == []
    assert alice.get(f"/v1/scans/{refused_id}").json()["status"] == "refused"
    assert len(raw_files(api, answers[0].json()["scan_id"])) == 1


def test_an_upload_just_over_the_image_limit_is_told_by_how_much(api):
    data = b"\xff\xd8\xff\xe0" + b"\0" * (10_500_003 - 4)
    answer = api.client(api.key("alice")).post("/v1/scans", files={"image": ("big.jpg", data)})
    assert answer.status_code == 413
    detail = answer.json()["detail"]
    assert "10,500,003 bytes" in detail and "14,243 bytes over" in detail


def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408(start_api, broker_api, tmp_path):
    config = ApiConfig(body_timeout=2.0, **ROOMY_QUOTAS)
    api = start_api(write_api_topology(tmp_path / "t.yaml"), broker_api=broker_api, config=config)
    key = api.key("trickler")
    sock = socket.create_connection(("127.0.0.1", api.server.port), timeout=30)
    sock.sendall(
        b"POST /v1/scans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n"
        b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
    )
    started = time.monotonic()
    answer = b""
    try:
        sock.settimeout(0.5)
        while time.monotonic() - started < 20 and b"\r\n\r\n" not in answer:
            with contextlib.suppress(OSError):  # the server closed its side after answering
                sock.sendall(b"x")
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            except TimeoutError:
                pass
        seconds = time.monotonic() - started
    finally:
        sock.close()
    print(f"\nslow body: {answer.split(b' ', 2)[:2]} after {seconds:.1f} s")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert seconds < 10


def test_a_client_that_leaves_mid_body_is_one_log_line_not_a_traceback(api, caplog):
    key = api.key("leaver")
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", api.server.port), timeout=30)
            sock.sendall(
                b"POST /v1/scans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + key.encode()
                + b"\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 100000\r\n\r\n--b\r\n"
            )
            time.sleep(0.2)
            sock.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
            if len(lines) >= 5:
                break
            time.sleep(0.1)
    lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == 5, [r.getMessage() for r in caplog.records]
    assert all(r.exc_info is None for r in caplog.records)
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()]
