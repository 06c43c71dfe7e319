"""Use cases of the registry and the ports they need; imports only the domain."""
