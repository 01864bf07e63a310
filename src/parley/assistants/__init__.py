"""Assistants: custom GPTs built from instructions, knowledge, tools and memory.

Imports nothing here, so ``parley.schema`` can import ``tables`` without a web
framework (the migration path).
"""
