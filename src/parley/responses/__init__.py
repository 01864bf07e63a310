"""The OpenAI Responses and Conversations APIs over Parley's own chats (``/v1``).

Imports nothing here: ``parley.schema`` imports ``tables`` alone, so the
migration path loads no web framework.
"""
