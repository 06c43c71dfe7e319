"""The registry's vocabulary: sources, columns, API keys and the rules they keep."""
