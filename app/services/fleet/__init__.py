"""The fleet: the in-memory state of every satellite, satellite authentication and
its verified-key cache, heartbeats (answered from memory, flushed in batches) and
the processes satellites report.

May use: `common`.
"""
