"""`growbin scan`: your own photos through the pipeline, with no services, read by a person
(text) or a program (json, the API's scan objects)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from growbin.commands.scan import (
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_USAGE,
    ScanUsageError,
    exit_status,
    find_photos,
)
from growbin.fakes.openai_server import FakeOpenAI
from growbin.scan.demo import Photo, ScanOutcome
from growbin.scan.images import ImageRejected, RejectCode
from growbin.scan.samples import load_manifest, samples_dir
from growbin.scan.views import PhotoReport

ROOT = Path(__file__).resolve().parents[3]
NOWHERE = {
    "GROWBIN_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
    "GROWBIN_REDIS_URL": "redis://127.0.0.1:1/0",
    "GROWBIN_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
    "GROWBIN_RABBITMQ_API_URL": "http://guest:guest@127.0.0.1:1/api",
    "GROWBIN_PROVIDERS": "offline",
    "COLUMNS": "80",
}


def _scan(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "growbin.cli", "scan", *args],
        env={**os.environ, **NOWHERE, **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_sample_scans_to_json_with_the_item_and_the_guidance():
    proc = _scan(str(samples_dir() / "can.jpg"), "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = [PhotoReport.model_validate(r) for r in json.loads(proc.stdout)]
    assert len(reports) == 1
    scan = reports[0].scan
    assert scan is not None and scan.status == "done" and reports[0].refused is None
    assert scan.result is not None
    assert scan.result.item == "can"
    assert "캔류 수거함" in (scan.result.guidance or "")
    vision = (scan.result.providers or {})["vision"]
    assert vision["offline"] is True
    # no hint: colour and shape only, so it says it is unsure and names its candidates
    assert scan.result.confidence is not None and scan.result.confidence < 0.5
    assert vision["candidates"][0]["item"] == "can"
    assert scan.result.guidance.startswith("사진만으로는 확실하지 않아요.")
    assert all(step.state == "done" for step in scan.steps.values())


def test_a_file_that_is_not_an_image_is_refused_with_its_code_and_fix():
    proc = _scan("README.md")
    assert proc.returncode == EXIT_REFUSED, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "refused not_an_image" in text
    assert "fix send a JPEG, PNG or WebP photo" in text
    assert "1 photo: 0 scanned, 1 refused" in text
    as_json = _scan("README.md", "--format", "json")
    assert as_json.returncode == EXIT_REFUSED
    [report] = json.loads(as_json.stdout)
    assert report["scan"] is None
    assert report["refused"]["error"] == "not_an_image"
    assert "send a JPEG, PNG or WebP photo" in report["refused"]["detail"]


def test_a_folder_of_samples_scans_with_a_progress_bar_and_reads_well_at_80_columns():
    proc = _scan(str(samples_dir()), "--hint", "")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "scanning" in proc.stderr and "6/6" in proc.stderr  # the bar, on stderr
    out = proc.stdout
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    for name in load_manifest():
        assert str(samples_dir() / name) in out
    assert "samples.json" not in out and "make_samples.py" not in out  # not photos
    assert "6 photos: 6 scanned" in out
    assert out.count("unsure:") == 6  # no hint: every answer says it is unsure


def test_a_missing_path_is_a_usage_error_and_nothing_runs():
    proc = _scan("no-such-photo.jpg")
    assert proc.returncode == EXIT_USAGE
    assert "'no-such-photo.jpg' does not exist" in proc.stderr
    assert "growbin scan:" not in proc.stdout


@pytest.mark.parametrize("response_format", ["json_schema", "json_object"])
def test_a_local_openai_compatible_model_scans_without_any_service(response_format):
    with FakeOpenAI(json_schema=response_format == "json_schema") as fake:
        proc = _scan(
            str(samples_dir() / "battery.png"),
            "--hint",
            "다 쓴 건전지",
            "--format",
            "json",
            env={
                "GROWBIN_PROVIDERS": "openai",
                "GROWBIN_OPENAI_BASE_URL": fake.base_url,
                "GROWBIN_OPENAI_API_KEY": fake.api_key,
                "GROWBIN_OPENAI_VISION_MODEL": "llava:13b",
                "GROWBIN_OPENAI_TEXT_MODEL": "qwen2.5:7b",
                "GROWBIN_OPENAI_RESPONSE_FORMAT": response_format,
            },
        )
        calls = fake.calls
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "providers openai" in proc.stderr
    [report] = json.loads(proc.stdout)
    result = report["scan"]["result"]
    assert result["item"] == "battery"
    assert result["providers"]["vision"]["model"] == "llava:13b"
    assert result["providers"]["vision"]["offline"] is False
    assert result["providers"]["text"]["model"] == "qwen2.5:7b"
    assert "폐건전지" in result["guidance"]
    assert [c.model for c in calls] == ["llava:13b", "qwen2.5:7b"]


def test_a_scan_the_model_refuses_fails_with_exit_status_1():
    with FakeOpenAI() as fake:
        proc = _scan(
            str(samples_dir() / "can.jpg"),
            env={
                "GROWBIN_PROVIDERS": "openai",
                "GROWBIN_OPENAI_BASE_URL": fake.base_url,
                "GROWBIN_OPENAI_API_KEY": "wrong-key",
            },
        )
    assert proc.returncode == EXIT_FAILED, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "status failed" in text
    assert "GROWBIN_OPENAI_API_KEY" in text or "401" in text


def test_folders_give_their_photos_files_are_taken_as_given_and_each_once(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "c.heic").write_bytes(b"x")  # refused later, with the iPhone fix
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.jpg").write_bytes(b"x")
    folder = find_photos([str(tmp_path)])
    assert [p.name for p in folder] == ["a.jpg", "b.PNG", "c.heic"]
    given = find_photos([str(tmp_path / "notes.txt"), str(tmp_path / "a.jpg"), str(tmp_path)])
    assert [p.name for p in given] == ["notes.txt", "a.jpg", "b.PNG", "c.heic"]
    globbed = find_photos([str(tmp_path / "**" / "*.jpg")])
    assert [p.name for p in globbed] == ["a.jpg", "d.jpg"]


def test_a_missing_path_or_an_empty_folder_names_the_fix(tmp_path):
    with pytest.raises(ScanUsageError, match="does not exist: give a photo file"):
        find_photos([str(tmp_path / "nope.jpg")])
    with pytest.raises(ScanUsageError, match="no photos in") as info:
        find_photos([str(tmp_path)])
    assert info.value.exit_code == EXIT_USAGE


def test_the_exit_status_says_failed_before_refused_before_done():
    done = ScanOutcome(Photo("a", b""), scan={"status": "done"})
    refused = ScanOutcome(Photo("b", b""), refused=ImageRejected(RejectCode.EMPTY, "empty"))
    failed = ScanOutcome(Photo("c", b""), scan={"status": "failed"})
    assert exit_status([done]) == 0
    assert exit_status([done, refused]) == EXIT_REFUSED
    assert exit_status([done, refused, failed]) == EXIT_FAILED
