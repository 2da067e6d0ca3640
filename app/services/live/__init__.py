"""Live views for people: the subscriptions and SSE feeds (status, events, commands,
metrics) filtered by what each viewer may see, and the registry of open live
connections that logouts, membership changes and shutdown end.

May use: `common`, `fleet`, `people`.
"""
