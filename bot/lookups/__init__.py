"""Record look-ups in the chat: recognise the request, answer it from the records, say it briefly."""
