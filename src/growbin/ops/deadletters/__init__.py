"""Dead-letter tools: archive the dead-letter queue in PostgreSQL, list, replay and purge.

Start at :class:`~growbin.ops.deadletters.service.DeadLetterService`; its module docstring says
how the queue and the archive stay consistent.
"""
