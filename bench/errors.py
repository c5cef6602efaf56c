"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class UserError(ValueError):
    """Bad input the user can fix; the message says what is wrong and what to do.

    A ValueError, so library callers can catch it as one and pydantic validators report
    it against the field that caused it."""


class Stopped(BaseException):  # noqa: N818 (a stop, not an error)
    """SIGTERM or SIGINT arrived: unwinds like KeyboardInterrupt (runs become KILLED), but
    passes through typer/click, which turn KeyboardInterrupt into their own exit."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def first_line(error: object) -> str:
    """One line that says what went wrong, for a UserError message ("" when it says nothing).

    Some messages open with a header and put the cause on the lines below it; torch's
    load_state_dict writes "Error(s) in loading state_dict for Net:" and then one
    "size mismatch for ..." or "Missing key(s) ..." line per problem. Such a header is
    joined with the first cause, and the number of further causes is given."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return ""
    first, causes = lines[0], lines[1:]
    if not causes or not first.endswith(":"):
        return first
    more = f" (and {len(causes) - 1} more)" if len(causes) > 1 else ""
    return f"{first} {causes[0]}{more}"
