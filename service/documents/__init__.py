"""Rendering: the jinja2 environment with Thai filters; it renders and decides nothing."""
