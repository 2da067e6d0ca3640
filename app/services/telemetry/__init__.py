"""What satellites report in event batches: parsing and validation per event,
attribution to teams and installations, redaction, the stored rows, their effects
(process status, tool catalogues, server logs, client sessions, config state,
limit breaches) and the scoped reads of them (`reads.py`, usage figures in `usage.py`).

May use: `common`, `fleet`, `people` (scoped usage reads).
"""
