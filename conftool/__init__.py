"""Liên Thông configuration tool: inventory, render, deploy, audit, playbooks and the lab."""
