class ServiceError(ValueError):
    """A refusal with a message meant for the person who asked."""
