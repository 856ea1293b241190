"""The help desk database: conversations, messages, feedback, and its migrations."""
