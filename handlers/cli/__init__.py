"""The `helpdesk` command line: one click group and its commands."""
