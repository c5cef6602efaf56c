"""Model families. Importing this package registers every baseline with bench.models."""

from baselines import sanity  # noqa: F401
