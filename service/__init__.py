"""The email-first meeting secretariat for Thai public offices."""

__version__ = "0.1.0"
