"""The operations desk's console (/desk): sign-in, the queue, a ticket, insights, and its JSON API."""
