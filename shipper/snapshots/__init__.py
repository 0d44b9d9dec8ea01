"""Syscall windows: per-thread syscall rings turned into snapshot documents (see manager.py)."""
