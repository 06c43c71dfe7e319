"""The HTTP entrypoint: a Litestar app over the container's use cases."""
