"""`python -m handlers.server.main [--instance DIR] serve …`: the helpdesk CLI with `serve` attached.

For test fixtures and the benchmark, which must start the server before (or without) the installed
`helpdesk` entry point having `serve` registered; it is the same group and the same command.
"""
from handlers.cli.main import cli
from handlers.server.command import serve

if "serve" not in cli.commands:
    cli.add_command(serve)

if __name__ == "__main__":
    cli()
