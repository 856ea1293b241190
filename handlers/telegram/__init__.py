"""The Telegram bot: its Application, what it does with each update, rendering, the outbox sender, notices."""
