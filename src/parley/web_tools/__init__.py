"""Tools beyond the built-ins: web search, page reading, MCP servers, and the
confirmation of side-effecting calls. Start from ``feature.WebToolsFeature``.

Nothing is imported here on purpose: ``parley.schema`` imports
``parley.web_tools.tables`` and must not pull in the web framework.
"""
