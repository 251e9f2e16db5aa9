"""Run untrusted student code in a confined child process (see session.Sandbox)."""

from .session import CallFailed, Limits, Sandbox
from .wire import Callback, Generator, Handle

__all__ = ["CallFailed", "Callback", "Generator", "Handle", "Limits", "Sandbox"]
