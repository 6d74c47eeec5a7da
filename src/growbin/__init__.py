"""Growbin task platform: one topology file drives RabbitMQ, Celery and the tools around them."""

__version__ = "0.1.0"
