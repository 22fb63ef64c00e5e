"""The commune room agent: a headless aiortc client that joins its site's meetings by itself and stays joined."""
