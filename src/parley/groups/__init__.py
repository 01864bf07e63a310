"""Groups of users, made by admins: who shares reach and who budgets apply to.

The package's ``__init__`` imports nothing (``parley.schema`` imports ``tables``
without loading the web layer)."""
