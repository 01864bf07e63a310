"""Budgets and rate limits (issue 15, item 3): amounts per period and requests or
tokens per minute on the instance, groups, users, projects and API keys, reserved
before every model call and settled after it. ``service.Budgets`` (the rules),
``model.BudgetedModel`` (the wrapper every model call goes through), ``ledger``
(the counters' SQL), ``tables``. See ``docs/design/budgets.md``. Imports nothing,
so ``parley.schema`` can import ``tables`` alone."""
