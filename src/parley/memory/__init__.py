"""Memory and long conversations: saved facts about the user, recalled into
context, learned from explicit requests and after-turn extraction, plus the
incremental summaries of conversations that outgrow the model's window.

Modules: ``tables`` (the ``memories`` table), ``text`` (words, the explicit
fast path, the "did the user really say this" guard), ``store`` (scoped
queries), ``recall`` (semantic + keyword + recency fusion), ``service``
(writes with merge/update rules), ``extract`` (JSON-schema-constrained
extraction), ``summaries`` (history summaries), ``tools``, ``router`` and
``feature`` (the plug-in). Nothing is imported here so ``tables`` stays
importable by the migration environment without the rest.
"""
