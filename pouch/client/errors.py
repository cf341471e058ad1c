"""Typed client errors: one class per HTTP status family, each carrying the server's message."""


class PouchClientError(Exception):
    """Base of every error the SDK raises."""
    http_status = 500

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.http_status

    def __str__(self):
        return self.message


class APIError(PouchClientError):
    """The daemon answered with an error status not covered by a subclass."""
    http_status = 500


class InvalidArgument(APIError):
    """400: the request was malformed or a parameter was invalid."""
    http_status = 400


class NotFound(APIError):
    """404: no such container / image / exec / volume / network."""
    http_status = 404


class Conflict(APIError):
    """409: name in use, container running, resource busy."""
    http_status = 409


class ConnectionFailed(PouchClientError):
    """The daemon socket could not be reached."""
    http_status = 500


_BY_STATUS = {400: InvalidArgument, 404: NotFound, 409: Conflict}


def error_for_status(status, message):
    """Return the typed error for an HTTP status and message."""
    return _BY_STATUS.get(status, APIError)(message or "status %d" % status, status)
