"""Member records: a read-only local copy of MAMIS member data and the lookups on it.

See docs/records.md. The chat core needs only `Records` (lookups), `Asker` (who is
asking), the exceptions and `message_ja` (their Japanese wording) and the masking
helpers; `sync` and `demo` are the two jobs that write the database.
"""
