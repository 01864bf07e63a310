"""Files and knowledge: upload, parse, chunk, embed, index, retrieve, cite.

Modules (each small, each testable alone):

- ``tables``: files, chunks, collections (on the shared ``Base``).
- ``sniff`` / ``parsers`` / ``chunking``: what a file really is, its text as
  structured segments (pages, headings, tables), and passages with citation
  metadata.
- ``embeddings`` / ``minilm``: the ``Embedder`` protocol, ``build_embedder``,
  the embedded all-MiniLM-L6-v2 (numpy, no torch) and OpenAI-compatible endpoints.
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
