"""Network audit: checks over every site and link, results stored with history (DESIGN §5)."""
