"""Messaging channels' delivery: the outbox, and waiting for news (long polls)."""
