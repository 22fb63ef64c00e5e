"""The lab: the province emulated with real FRR routers, sshd and links in network namespaces (DESIGN §4)."""

from conftool.lab.errors import LabError, LabNotRunning
from conftool.lab.lab import down, exec_argv, running_sites, status, up
from conftool.lab.profiles import PROFILES, profile_sites

__all__ = ["PROFILES", "LabError", "LabNotRunning", "down", "exec_argv", "profile_sites", "running_sites",
           "status", "up"]
