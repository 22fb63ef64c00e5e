"""Liên Thông meeting service: scheduling, readiness, media plane and the room agent."""
