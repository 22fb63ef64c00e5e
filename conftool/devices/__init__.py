"""Device sessions and the pure logic around them: normalising configs and planning remediation (DESIGN §5)."""
