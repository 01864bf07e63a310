"""Accounts, browser sessions, API keys and sign-in rate limiting.

Secrets are never stored: sessions and API keys keep only a SHA-256 of the
token, passwords an argon2 hash. Every function takes the caller's
``AsyncSession`` and leaves the commit to the caller (one unit of work per request).
"""
