"""SQLite plumbing shared by the help desk's own databases and the records copy."""
