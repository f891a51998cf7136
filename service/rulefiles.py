"""Reading the office's rule files (`rules/*.yaml`): one reader, one kind of error.

Every rule file is a YAML mapping, read once and kept; a file that cannot be
read, or is not a mapping, is an error that names the file, because the
person fixing it is editing data, not code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml


class RuleError(ValueError):
    """A rules file is wrong; the message names the file and, where it can, the entry."""


@lru_cache(maxsize=None)
def read_rule_file(path: Path) -> dict[str, Any]:
    """A rules file's YAML as a mapping, read once."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RuleError(f"{path}: cannot read the rules: {error}") from error
    if not isinstance(data, dict):
        raise RuleError(f"{path}: must be a mapping of sections")
    return data
