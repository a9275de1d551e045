from __future__ import annotations


class ConfigError(ValueError):
    """An invalid setting. ``str()`` is the one line an operator sees (no traceback)."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"invalid {variable}: {problem}")
        self.variable = variable
        self.problem = problem
