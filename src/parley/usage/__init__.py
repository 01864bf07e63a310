"""The usage ledger: one row per billable call (a ``/v1`` chat completion, an
embeddings call; later Responses and chat turns), with tokens, cost, latency and
outcome, per user and per API key.

``tables`` holds the row (imported by ``parley.schema`` for the migrations),
``ledger`` the ``UsageLedger`` service that writes and sums it. This ``__init__``
imports nothing, so the migration path loads only the table.
"""
