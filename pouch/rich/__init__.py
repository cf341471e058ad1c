"""Rich containers (Pouch's ``--rich``): an init process is PID 1 and the user's command runs under it.

See ``launch`` for the modes (dumb-init, sbin-init, systemd) and ``--initscript``.
"""
from .launch import MODES, RichLaunch, launch_env, plan, stop_signal, validate

__all__ = ["MODES", "RichLaunch", "launch_env", "plan", "stop_signal", "validate"]
