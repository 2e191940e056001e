"""Pluggable backends: LLMs, embedders and proxy models, each a small protocol."""
