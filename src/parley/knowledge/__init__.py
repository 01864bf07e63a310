"""Files and knowledge: upload, parse, chunk, embed, index, retrieve, cite.

Vectors come from the shared ``parley.embeddings`` package; the settings
(``files_*``, ``embedding_*``, ``knowledge_*``, ``chunk_chars``) are fields of
``parley.config.Settings``. Modules (each small, each testable alone):

- ``tables``: files, chunks, collections (on the shared ``Base``).
- ``sniff`` / ``parsers`` / ``chunking``: what a file really is, its text as
  structured segments (pages, headings, tables), and passages with citation
  metadata.
- ``blobs``: content-addressed storage of the bytes under the data dir.
- ``store``: every query, scoped by user id.
- ``index`` / ``retrieval``: keyword (FTS5 / tsvector) and dense (numpy or
  pgvector) search fused with reciprocal rank fusion, with a reranking hook.
- ``ingest``: background ingestion with its status in the database.
- ``context``: the ``search_knowledge`` tool and the context source for turns.
- ``api`` / ``feature``: the HTTP routes and the feature object.

This ``__init__`` imports nothing, so ``parley.schema`` can import
``parley.knowledge.tables`` cheaply.
"""
