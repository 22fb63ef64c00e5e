"""The built-in audit checks, one module each; importing a module registers its check."""
