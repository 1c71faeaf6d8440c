"""Typed recipe schema: one pydantic model for a whole run, validated as a whole."""
