"""Stores for sources and API keys: in memory, SQLite and PostgreSQL."""
