"""The usage ledger: one row per model call (each call of a chat turn's tool loop,
every ``/v1`` call, titles, memory extraction, summaries, remote embeddings,
compaction), with tokens, cost, latency and outcome, per user, API key,
conversation, project and assistant.

``tables`` holds the rows (``usage_events``, ``model_prices``; imported by
``parley.schema`` for the migrations), ``prices`` the ``PriceBook`` (an
administrator's price, else the model's own),
``ledger`` the ``UsageLedger`` service that writes and sums it, ``metering`` the
wrappers other paths use to write their rows (``Charge``, ``metered``,
``billed_to``, ``meter_embedder``). This ``__init__``
imports nothing, so the migration path loads only the table.
"""
