"""Option values the side commands share, checked as a suite's are."""

from __future__ import annotations

from bench.errors import UserError


def json_options(options: str) -> dict:
    """--options: a JSON object of plain values, checked as a suite's options are."""
    import json

    try:
        opts = json.loads(options)
    except ValueError as e:
        raise UserError(f"bad --options: {e}") from None
    if not isinstance(opts, dict):
        raise UserError("--options must be a JSON object and --batch-sizes positive integers")
    from bench.suite import check_option

    for key, value in opts.items():  # JSON's NaN and Infinity too, as in a suite
        try:
            check_option(key, value)
        except ValueError as e:
            raise UserError(f"--options: {e}") from None
    return opts
