"""Typed errors. Each says what was received and what to do about it."""


class TLError(Exception):
    """Base class for every error tl_core raises on purpose (never a bug)."""


class ConfigError(TLError):
    """A setting is missing, out of range or contradicts another one."""


class DatasetError(TLError):
    """The images on disk cannot be used as given."""


class WeightsError(TLError):
    """Pretrained weights are missing or do not match the architecture."""


class ImageReadError(TLError):
    """A file is not a readable image; the message says why in plain words."""


class RunError(TLError):
    """A run directory is missing, incomplete or in the wrong state."""


class CancelTraining(Exception):
    """Raised by a callback to stop the fit loop cleanly (stop file, early stopping)."""

    def __init__(self, reason: str = "stopped"):
        super().__init__(reason)
        self.reason = reason
