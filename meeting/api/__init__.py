"""The HTTP face of the meeting service: thin FastAPI routers over ``meeting.services``."""
