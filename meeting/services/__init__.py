"""The meeting service's logic, independent of HTTP: the routers and the CLI only call into here."""
