"""Personal data: masking, retention, and one person's export or deletion."""
