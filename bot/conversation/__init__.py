"""The conversation: one message in, one reply out; states, intents, answers and what a reply offers."""
