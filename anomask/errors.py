"""The one exception type the CLI turns into a clear message and a non-zero exit."""


class AnomaskError(Exception):
    """A user-facing error: bad input, missing file, mismatched model. The message names
    the problem (and the file, where there is one); no traceback is shown for it."""
