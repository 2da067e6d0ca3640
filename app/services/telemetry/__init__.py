"""What satellites report in event batches: parsing and validation per event,
attribution to teams and installations, redaction, the stored rows, their effects
(process status, tool catalogues, server logs) and usage figures.

May use: `common`, `fleet`, `people` (scoped usage reads).
"""
