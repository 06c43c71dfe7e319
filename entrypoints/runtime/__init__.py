"""What every entrypoint shares and none owns: the outcome of each domain error (and, as they move
here, the container's start and stop, the limiters and the deadlines). It imports no entrypoint
package and no adapter."""
