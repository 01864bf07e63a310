"""A tiny MCP server for the tests: over stdio by default, or streamable HTTP
with ``http PORT``. Built with the official SDK's v2 server API."""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("fixture")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
def delete_file(path: str) -> str:
    """Delete a file (pretend)."""
    return f"deleted {path}"


@server.tool()
def note(text: str) -> str:
    """Save a note (no annotations: treated as side-effecting)."""
    return f"noted {text}"


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def show_env(name: str) -> str:
    """Return an environment variable of the server process."""
    return os.environ.get(name, "<unset>")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
