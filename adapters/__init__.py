"""Adapters: the ports implemented with real storage, connectors, crypto and serialization."""
