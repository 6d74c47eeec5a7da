"""`growbin journal status|sync|checkpoint` through a root like cli.py's (it wires journal_app)."""

import json
import time

import typer
from typer.testing import CliRunner

from growbin.commands.common import State
from growbin.journal.commands import journal_app
from growbin.journal.rows import JournalRow
from growbin.journal.store import JournalStore

root = typer.Typer()
root.add_typer(journal_app, name="journal")


@root.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = State()


def make_journal(folder, name="work@host", rows=3):
    folder.mkdir(parents=True, exist_ok=True)
    with JournalStore.open(folder / f"{name}.db") as store:
        store.write(
            [
                JournalRow(f"t{i}", "growbin.demo.add", "completed", 0, completed_at=1.0)
                for i in range(rows)
            ]
        )


def run(args, env):
    return CliRunner().invoke(root, args, env=env)


def test_status_lists_every_journal_in_the_folder_with_its_counts(tmp_path):
    make_journal(tmp_path / "j", "work@a", 3)
    make_journal(tmp_path / "j", "ai@b", 2)
    env = {"GROWBIN_JOURNAL_PATH": str(tmp_path / "j" / "{hostname}.db")}
    result = run(["journal", "status", "--format", "json"], env)
    assert result.exit_code == 0, result.output
    rows = {r["path"].rsplit("/", 1)[1]: r for r in json.loads(result.output)}
    assert rows["work@a.db"]["by_status"] == {"completed": 3}
    assert rows["ai@b.db"]["unsynced"] == 2
    assert {r["integrity"] for r in rows.values()} == {"ok"}


def test_status_without_journals_says_where_it_looked(tmp_path):
    env = {"GROWBIN_JOURNAL_PATH": str(tmp_path / "none" / "{hostname}.db")}
    result = run(["journal", "status"], env)
    assert result.exit_code == 1
    assert "no journal files" in result.output


def test_checkpoint_truncates_the_wal_of_the_named_worker(tmp_path):
    env = {"GROWBIN_JOURNAL_PATH": str(tmp_path / "{hostname}.db")}
    with JournalStore.open(tmp_path / "work@a.db") as live:  # a worker still has it open
        live.write([JournalRow(f"t{i}", "x", "pending", 0) for i in range(300)])
        wal = tmp_path / "work@a.db-wal"
        assert wal.stat().st_size > 0
        result = run(["journal", "checkpoint", "--worker", "work@a", "--format", "json"], env)
        assert result.exit_code == 0, result.output
        [row] = json.loads(result.output)
        assert row["busy"] is False and row["wal_bytes_before"] > 0 == row["wal_bytes_after"]
        assert wal.stat().st_size == 0


def test_sync_fails_with_exit_1_and_keeps_the_rows_when_postgresql_is_unreachable(tmp_path):
    make_journal(tmp_path, "work@a", 2)
    env = {
        "GROWBIN_JOURNAL_PATH": str(tmp_path / "{hostname}.db"),
        "GROWBIN_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/none",
    }
    started = time.monotonic()
    result = run(["journal", "sync", "--format", "json"], env)
    assert result.exit_code == 1
    [row] = json.loads(result.output)
    assert row["status"] == "failed" and "PostgreSQL is not reachable" in row["error"]
    assert time.monotonic() - started < 10
    with JournalStore.open(tmp_path / "work@a.db") as store:
        assert store.stats()["unsynced"] == 2
