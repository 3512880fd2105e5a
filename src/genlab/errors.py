"""The one exception a user sees as a single line: bad input, not a bug."""


class UserError(Exception):
    """A problem with what the user asked for or gave us; the CLI prints it and exits with status 2."""
