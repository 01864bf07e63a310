"""The HTTP toolkit every router uses, core or feature: typed dependencies
(``deps``: the principal, the database session, services), problem documents
(``problems``), request bodies (``bodies``) and the pure ASGI middleware.

It sits below the features and above the services; it knows no feature."""
