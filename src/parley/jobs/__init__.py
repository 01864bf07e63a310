"""Durable jobs: one queue in the database for work done outside a request.

``tables`` holds the ``jobs`` rows (imported by ``parley.schema`` for the
migrations), ``queue`` the SQL (enqueue, claim with a lease, complete, fail with
backoff, dead letter, the admin's retry and discard), ``runner`` the
``Jobs`` service: handlers by kind and the loop that claims and runs them, in
the server process or in ``parley worker`` processes. This ``__init__``
imports nothing, so the migration path loads only the table.
"""
