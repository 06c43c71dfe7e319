"""Webhooks on the wire: Standard Webhooks signatures and the HTTP transport."""
