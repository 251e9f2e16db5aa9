"""Run untrusted student code in a confined child process (see session.Sandbox)."""

from .session import CallFailed, Limits, Sandbox, Strength
from .wire import Callback, Handle

__all__ = ["CallFailed", "Callback", "Handle", "Limits", "Sandbox", "Strength"]
