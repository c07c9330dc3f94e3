"""The one exception a person is meant to read."""


class UserError(Exception):
    """Bad input or an impossible request, with a message that says what to do.

    The command line prints it as one line and exits non-zero; the app shows it
    next to the input it concerns. Anything else escaping is a bug.
    """
