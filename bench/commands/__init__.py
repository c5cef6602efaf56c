"""Each command's work, one module per command (bench/cli.py only parses): a function taking
typed arguments, whose imports that load torch stay inside it, after the refusals that need
no torch."""
