"""The command queue: enqueueing with priorities, claims and leases for polling
satellites, results, the lease and expiry sweeps, and the `configure` pushes that
configuration changes cause.

May use: `common`, `fleet`.
"""
