"""The operations desk: the handoff, tickets and their queue, business hours, what agents do, insights."""
