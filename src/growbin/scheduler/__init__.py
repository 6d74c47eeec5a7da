"""`growbin beat`: the topology's schedule, run by exactly one active Celery beat."""
