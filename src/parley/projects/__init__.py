"""Projects: chats, files, instructions, defaults and memory kept together.

The package's ``__init__`` imports nothing (``parley.schema`` imports ``tables``
without loading the web layer)."""
