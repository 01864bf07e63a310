"""Metrics and traces (issue 15, item 6): what a Prometheus scrape and an
OpenTelemetry collector see of Parley.

``metrics`` keeps the Prometheus metrics (fed by the usage ledger's rows and by
each model call's attempts) and renders them for ``/metrics``; ``tracing``
makes OpenTelemetry spans of turns and model calls with the GenAI semantic
conventions' ``gen_ai.*`` attributes, off unless an OTLP endpoint is set;
``observer`` joins both into the ``CallObserver`` the failover chain calls.
"""
