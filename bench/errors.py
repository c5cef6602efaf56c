"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class UserError(ValueError):
    """Bad input the user can fix; the message says what is wrong and what to do.

    A ValueError, so library callers can catch it as one and pydantic validators report
    it against the field that caused it."""


def first_line(error: object) -> str:
    """The first non-empty line of an error's message ("" when it has none)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
