"""The helpdesk command end to end on a temporary instance folder."""
import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from handlers.cli import main as cli_module
from handlers.cli.main import cli
from tests.quality import EVAL, eval_data

ROOT = Path(__file__).resolve().parent.parent
LOCALGOV = EVAL / "localgovfaq"


def run(args, **kwargs):
    result = CliRunner().invoke(cli, args, catch_exceptions=False, **kwargs)
    return result


def test_every_command_has_help():
    def walk(group, prefix=()):
        for name, command in group.commands.items():
            yield prefix + (name,), command
            if isinstance(command, click.Group):
                yield from walk(command, prefix + (name,))

    assert cli.help
    for path, command in walk(cli):
        assert command.help, f"`helpdesk {' '.join(path)}` has no help text"
        result = run([*path, "--help"])
        assert result.exit_code == 0
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"`helpdesk {' '.join(path)} {param.opts[0]}` has no help text"


def test_index_then_search_json(tmp_path):
    inst = str(tmp_path / "inst")
    result = run(["--instance", inst, "index"])
    assert result.exit_code == 0, result.output
    assert "変更なし 0 件" in result.output
    again = run(["--instance", inst, "index"])
    assert "追加・更新 0 件" in again.output

    result = run(["--instance", inst, "search", "医療機関マスタはいつ更新されますか", "--k", "2", "--json"])
    payload = json.loads(result.output)
    assert payload["query"] == "医療機関マスタはいつ更新されますか"
    assert len(payload["results"]) == 2
    first = payload["results"][0]
    assert set(first) == {"slug", "title", "kind", "updated", "event_date", "passage", "score", "confidence"}
    assert first["slug"] == "institution-master-updates"
    assert first["updated"] == "2026-01-15"


def test_index_says_in_one_line_whether_it_used_the_word_vectors(tmp_path, monkeypatch):
    from kb import vectors

    inst = str(tmp_path / "inst")
    with_vectors = run(["--instance", inst, "index"]).output.splitlines()
    assert with_vectors[1:] == [f"単語ベクトル: あり（ja_ginza-5.3.0、{vectors.folder()}）"]
    # The folder may also come from config.toml (VECTORS_PATH): there, nothing was fetched.
    (tmp_path / "inst" / "config.toml").write_text(f'VECTORS_PATH = "{tmp_path / "none"}"\n', encoding="utf-8")
    monkeypatch.setenv(vectors.ENV, "-")  # recorded, so that the value the command sets is undone
    monkeypatch.delenv(vectors.ENV)
    without = run(["--instance", inst, "index"])
    assert without.stdout.splitlines()[1:] == [
        f"単語ベクトル: なし（{tmp_path / 'none'} にありません。helpdesk fetch-vectors で取得すると"
        "言い換えた質問にも答えられます）。語の一致だけで検索します"]


def test_search_without_index_is_a_clear_error(tmp_path):
    """The CLI says the same sentence as the API and the pages (helpdesk.errors), naming the command."""
    result = CliRunner().invoke(cli, ["--instance", str(tmp_path), "search", "マスタ"])
    assert result.exit_code == 1
    assert result.output == ("Error: ナレッジベースの準備ができていません。しばらくしてからもう一度お試しください。"
                             "（管理者の方は `helpdesk index` を実行してください）\n")


def test_search_human_output_for_nothing_found(tmp_path):
    inst = str(tmp_path)
    run(["--instance", inst, "index"])
    result = run(["--instance", inst, "search", "zzzz"])
    assert "該当する記事が見つかりませんでした" in result.output


def test_broken_article_sets_exit_status(tmp_path, monkeypatch):
    articles = tmp_path / "articles"
    shutil.copytree(ROOT / "kb" / "articles", articles)
    (articles / "oops.md").write_text("---\ntitle: [\n---\n本文", encoding="utf-8")
    monkeypatch.setattr(cli_module, "DEFAULT_SOURCES", (articles,))
    result = CliRunner().invoke(cli, ["--instance", str(tmp_path / "i"), "index"])
    assert result.exit_code == 1
    assert f"スキップ: {articles / 'oops.md'}: フロントマターの YAML が読めません" in result.stderr
    assert "追加・更新 10 件" in result.stdout


def test_eval_on_a_corpus_json(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"id": "a", "question": "粗大ごみの出し方", "answer": "申込制です"}\n'
        '{"id": "b", "question": "住民票の写しの取り方", "answer": "市民課で交付します"}\n',
        encoding="utf-8",
    )
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"query": "住民票がほしい", "relevant": ["b"], "grades": {"b": 2}}\n'
        '{"query": "大きいごみを捨てたい", "relevant": ["a"]}\n'
        '{"query": "宇宙旅行の申し込み", "relevant": []}\n',
        encoding="utf-8",
    )
    result = run(["--instance", str(tmp_path / "i"), "eval", "--corpus", str(corpus), "--questions", str(questions), "--json"])
    report = json.loads(result.output)
    assert set(report) == {"n", "hit@1", "hit@3", "mrr@10", "recall@10", "ndcg@10", "answered", "passage@1", "answered_right",
                           "abstained", "misses"}
    assert report["n"] == 3
    assert report["recall@10"] == 1.0
    assert report["abstained"] == 1.0


def test_eval_rejects_a_bad_question_file(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("not json\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--instance", str(tmp_path), "eval", "--questions", str(questions)])
    assert result.exit_code == 1
    assert "評価ファイルを読めません" in result.output


@pytest.mark.slow  # a minute: the whole localGovFAQ corpus indexed and asked
def test_localgov_reaches_the_issue_targets(tmp_path):
    eval_data("localgovfaq/dev.jsonl", "localgovfaq/corpus.jsonl")
    result = run(
        ["--instance", str(tmp_path), "eval", "--corpus", str(LOCALGOV / "corpus.jsonl"),
         "--questions", str(LOCALGOV / "dev.jsonl"), "--json"]
    )
    report = json.loads(result.output)
    # BM25 with Elasticsearch's Kuromoji analyzer: Recall@10 0.600, nDCG@10 0.494; issue 11 asks for
    # multilingual-e5-large's level, 0.68 / 0.57 (the word vectors, kb/vectors.py, get there).
    assert report["recall@10"] >= 0.68
    assert report["ndcg@10"] >= 0.57


def test_the_group_help_shows_whole_command_descriptions():
    listing = run(["--help"]).output.split("Commands:", 1)[1]
    assert "..." not in listing
    flat = "".join(listing.split())
    for name, command in cli.commands.items():
        assert "".join(command.help.split("\n\n", 1)[0].split()) in flat, name


def test_outside_a_project_folder_it_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HELPDESK_INSTANCE_PATH", raising=False)
    result = run(["search", "会費"])
    assert result.exit_code == 1
    assert f"インスタンスフォルダ {tmp_path / 'instance'} がありません" in result.output
    assert "しばらくしてから" not in result.output
    assert list(tmp_path.iterdir()) == []  # no empty ./instance left behind
