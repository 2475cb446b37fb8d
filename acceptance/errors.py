"""Errors a user can fix: each names the problem and the fix, never a traceback."""


class AcceptanceError(Exception):
    """Base class: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem, fix)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem}\n  fix: {self.fix}"


class ConfigError(AcceptanceError):
    """A bad option value, environment variable or thresholds file."""


class DeviceUnavailable(AcceptanceError):
    """The requested device cannot be used on this host."""


class CheckpointError(AcceptanceError):
    """The model checkpoint folder cannot be loaded."""


class ImageError(AcceptanceError):
    """The input image cannot be read."""


class DeviceOutOfMemory(AcceptanceError):
    """The device ran out of memory while loading or running the model."""
