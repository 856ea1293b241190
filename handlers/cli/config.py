"""`helpdesk config`: the effective settings and where each came from, or the settings page itself.

Everything shown comes from the declared list in helpdesk.settings; secrets are masked. `--markdown`
prints docs/settings.md (a test fails when the file is stale) and `--toml` writes what the config files
set as config.toml, for moving off config.json.
"""
from __future__ import annotations

import click

from helpdesk.errors import describe
from helpdesk.settings import SettingError, effective_lines, load_settings, markdown, to_toml


def instance_settings(instance):
    """The instance's settings, or the one Japanese line that says which one is wrong."""
    try:
        return load_settings(instance.path)
    except SettingError as e:
        raise click.ClickException(describe(e).message) from None


@click.command("config")
@click.option("--markdown", "as_markdown", is_flag=True, help="設定の一覧（docs/settings.md の内容）を出力します")
@click.option("--toml", "as_toml", is_flag=True,
              help="設定ファイルで指定された値を config.toml の形で出力します（config.json からの移行用）")
@click.pass_obj
def config_command(instance, as_markdown: bool, as_toml: bool):
    """有効な設定と、それぞれの値の出どころを表示します（秘密の値は伏せて表示）。

    値は 既定値 → config.json → config.toml → 環境変数（HELPDESK_…）の順に読み、後のものが優先されます。
    """
    if as_markdown:
        click.echo(markdown(), nl=False)
        return
    settings = instance_settings(instance)
    for note in settings.notes:
        click.echo(note, err=True)
    if as_toml:
        click.echo(to_toml(settings), nl=False)
        return
    click.echo("\n".join(effective_lines(settings)))


SETTINGS_KEY = "helpdesk.settings"  # where setting_option keeps the instance's settings for one command


def setting_option(name: str, *param_decls: str, **kwargs):
    """A command-line option whose default, environment variable and help come from the declared
    setting `name`, so `--help`, docs/settings.md and the validation read the same list.

    Given on the command line, the option wins; otherwise the instance's settings decide, in their
    usual order (environment, config.toml, config.json, default), so `PORT = 8080` in config.toml is
    not ignored by a command that also takes `--port`."""
    from click.core import ParameterSource

    from helpdesk.instance import Instance
    from helpdesk.settings import BY_NAME

    setting = BY_NAME[name]

    def from_settings(ctx: click.Context, param: click.Parameter, value):
        instance = ctx.find_object(Instance)
        if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE or instance is None:
            return value
        if SETTINGS_KEY not in ctx.meta:  # read once for all of the command's options
            try:
                ctx.meta[SETTINGS_KEY] = load_settings(instance.path)
            except SettingError:  # the command says what is wrong, in its own words, when it checks them
                ctx.meta[SETTINGS_KEY] = None
        settings = ctx.meta[SETTINGS_KEY]
        return value if settings is None else settings[name]

    return click.option(*param_decls, default=setting.default, show_default=True, envvar=setting.env_name,
                        show_envvar=True, help=setting.help, callback=from_settings, **kwargs)
