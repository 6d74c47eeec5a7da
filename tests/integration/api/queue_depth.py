"""A queue's depth as the broker knows it now (a passive declare), not as stats last sampled.

The management API's counters are refreshed every stats interval (5 s by default), so right
after a publish they can still say 0; a passive ``queue.declare`` answers from the queue itself.
"""

from __future__ import annotations

from kombu import Connection


def queue_depth(broker_url: str, queue: str) -> int:
    with Connection(broker_url, connect_timeout=10) as conn:
        channel = conn.default_channel
        declared = channel.queue_declare(queue=queue, passive=True)
        return int(declared.message_count)
