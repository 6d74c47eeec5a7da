"""Each worker's local SQLite journal of its tasks, synced to PostgreSQL's task_history.

hooks (task events -> rows) -> writer (batched commits) -> store (the SQLite file) -> sync
(upserts into PostgreSQL); maintenance runs the sync and checkpoint in every worker; tasks are
the beat's growbin.journal.sync / growbin.journal.checkpoint; commands is `growbin journal`.
"""
