"""The MCP entrypoint: tdb's use cases as Model Context Protocol tools, over stdio and HTTP."""
