"""Database-backed background jobs for Django, after QuickDapp's worker system."""
