"""Model routing: the "Auto" model (issue 15, item 4).

``rules`` decides (pure: a policy and what the request needs in, a model and a
reason out), ``classify`` tells a light question from a hard one, ``tables``
keeps the admins' policies, ``service`` reads them and routes a turn or a
``/v1`` call. Imports nothing at package level: ``parley.schema`` loads
``tables`` alone.
"""
