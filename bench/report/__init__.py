"""Leaderboards rebuilt from MLflow alone: tables (pandas) rendered as Markdown, CSV, HTML."""
