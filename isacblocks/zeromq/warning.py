"""The warnings of the ZeroMQ blocks (their own module, so the endpoint and the CURVE set-up
that it loads both import them without importing each other)."""


class ZmqWarning(RuntimeWarning):
    """Something a ZeroMQ block could not do as asked (e.g. end of stream not delivered)."""


class ZmqDropWarning(ZmqWarning):
    """A PUB sink dropped messages at its high-water mark."""
