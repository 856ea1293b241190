"""Recognise the few messages that are not questions for the knowledge base.

Matching runs on folded text (NFKC, lower case, katakana as hiragana, no spaces or punctuation), so
「ｵﾍﾟﾚｰﾀｰ」「オペレーター！」「おぺれーたー」 are the same word, and 「ありがとうございました。」 and
「ありがとうございます」 both read as thanks. Greetings, thanks and help only count when they are the
whole message: 「こんにちは、送付区分の設定方法は？」 is a question and goes to the search.
"""
from __future__ import annotations

import re
import unicodedata

import jaconv

_PUNCT = re.compile(r"[\s\u3000、。,.!?！？「」『』（）()【】\[\]・…‥~〜～♪☆★:;：；\"'“”‘’]+")


def fold(text: str) -> str:
    """Normalise for matching: NFKC, lower case, katakana → hiragana, drop spaces and punctuation."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = jaconv.kata2hira(t)
    return _PUNCT.sub("", t)


# Polite endings that do not change what a short message means.
_TAIL = r"(ございます|ございました|です|でした|ます|ました|します|しました|いたします|ね|よ|な|ー|っ|ぁ|ぇ)*"
_POLITE = (
    r"(を|は|とは|について)?(おしえて|教えて|知りたい|しりたい)?"
    r"(ください|下さい|くれ|ほしい|欲しい|もらえますか|いただけますか|もらえる)?(です|ます)?(か|の)?"
)

_GREETING = re.compile(
    r"((みなさん|皆さん|先生)?(こんにちは|こんにちわ|こんばんは|こんばんわ|おはよう|はじめまして|初めまして|"
    r"(よろしく|宜しく)(おねがい|お願い)?|もしもし|hello|hi|hey|やあ|どうも|おつかれさま|お疲れさま|"
    r"お疲れ様|失礼(します|いたします)))+" + _TAIL
)
_THANKS = re.compile(
    r"((どうも|本当に|ほんとうに)?(ありがと(う)?|有難う|有り難う|ありがたい|助かり|たすかり|感謝|thanks|"
    r"thankyou|thx|了解|りょうかい|わかりました|分かりました|承知|おかげ|解決し|さんきゅ)[^?]{0,12})" + _TAIL
)
_HELP = re.compile(
    r"(この|ここの)?(ちゃっと|ぼっと|へるぷですく|さーびす)?(の)?"
    r"(つかいかた|使い方|使いかた|へるぷ|help|何ができる|なにができる|何ができます|なにができます|"
    r"何を聞ける|なにをきける|何が聞ける|何を聞けます|どう使う|どうつかう|どう使えばいい|どうつかえばいい)"
    + _POLITE + _TAIL
)
_PERSON = r"(担当者|担当の(方|かた|人|ひと)|担当|おぺれーた(ー)?|人間|にんげん|有人|係の(人|方)|すたっふ|事務局|運営事務局|人|ひと|窓口)"
_ASK = r"(と|に|へ|で|から)?(話|はな|相談|そうだん|聞|き|訊|尋|たず|つな|繋|代わ|かわ|問い合わせ|問合せ|といあわせ|連絡|れんらく|対応|たいおう)"
_HANDOFF = re.compile(
    _PERSON + _ASK + r"|おぺれーた|^(担当者|有人対応|人間|人|にんげん)" + _POLITE + "$"
    r"|(電話|でんわ)で(相談|そうだん|問い合わせ|話|聞)"
)


def is_greeting(folded: str) -> bool:
    return bool(folded) and _GREETING.fullmatch(folded) is not None


def is_thanks(folded: str) -> bool:
    return bool(folded) and _THANKS.fullmatch(folded) is not None


def is_help(folded: str) -> bool:
    return bool(folded) and _HELP.fullmatch(folded) is not None


def is_handoff(folded: str) -> bool:
    """A request for a person: 「担当者と話したい」「オペレーター」「人に聞きたい」「電話で相談したい」…"""
    return _HANDOFF.search(folded) is not None


_ANAPHORA = re.compile(r"^(それ|その|これ|この|あれ|あの|そちら|そこ|そっち|こちら|そういえば|じゃあ|では|ちなみに|あと|また)")
# What a follow-up asks for: a time, a place, a number, a way … of the topic already on the table.
_ASKS_FOR = re.compile(
    r"(?:いつ|何時|なんじ|何日|なんにち|日時|日程|時間|じかん|期間|期限|締切|締め切り|しめきり|開催|どこ|場所|ばしょ|"
    r"会場|電話|でんわ|番号|連絡先|問い合わせ先|問合せ先|窓口|めーる|mail|だれ|誰|対象|費用|料金|いくら|"
    r"方法|やり方|やりかた|手順|どうやって|どうすれば|理由|なぜ|なんで|詳しく|くわしく|もっと|申込|申し込み|url)"
)
# Words that carry no subject of their own: particles and question endings.
_FUNCTION_WORDS = re.compile(
    r"(は|が|の|を|に|で|も|と|って|とは|ですか|です|でしょうか|でしょう|ますか|ます|か|ね|よ|"
    r"おしえて|教えて|ください|下さい|知りたい|しりたい|ありますか|あります|なんですか|なん|何|なに)*"
)


def is_follow_up(folded: str) -> bool:
    """A short question that leans on what was just said (「それはいつですか」「電話番号は？」「場所は？」).

    Only when it has no subject of its own: 「連絡協議会はいつですか」 is short too, but names its
    topic and is searched as it is.
    """
    if not folded or len(folded) > 20:
        return False
    if _ANAPHORA.match(folded):
        return True
    if len(folded) > 12 or not _ASKS_FOR.search(folded):
        return False
    return all(_FUNCTION_WORDS.fullmatch(rest) for rest in _ASKS_FOR.split(folded))


# Everyday topics a help desk for MAMIS never covers: the weather, shopping and eating out, money
# markets, sport and entertainment, travel. Matched on folded text (katakana as hiragana). Only a
# fallback for a search that gives no out-of-domain signal of its own (kb.results.SearchResults does).
_ELSEWHERE = re.compile(
    r"天気|天候|気温|気象|降水|雨|雪|台風|花粉情報|"
    r"買い物|かいもの|通販|せーる|安売り|ぷれぜんと|おみやげ|お土産|れすとらん|らんち|ぐるめ|らーめん|すし|寿司|"
    r"れしぴ|献立|こんびに|すーぱー|"
    r"株価|株式|日経平均|為替|円相場|どる円|仮想通貨|びっとこいん|"
    r"野球|さっかー|試合結果|競馬|芸能|映画|どらま|あにめ|げーむ|占い|星座|"
    r"観光|旅行|ほてる|時刻表|乗り換え"
)
# Words of MAMIS's own world: a question that names one is never out of scope, whatever else it says
# (「パスワードを忘れた」 is about signing in to MAMIS even if no article covers it).
_OURS = re.compile(
    r"mamis|まみす|医師会|会員|日医|入会|異動|退会|送付|雑誌|にゅーす|医療機関|くりにっく|かかりつけ|"
    r"ますた|申請|届|承認|協議会|説明会|登録|ろぐいん|ぱすわーど|事務局|連携"
)


def is_out_of_scope(folded: str, out_of_domain: bool | None = None) -> bool:
    """A question about something else entirely (「明日の天気を教えて」「株価は？」), to be told what the
    desk answers rather than offered articles that merely share a word with it.

    `out_of_domain` is the search's own judgement when it gives one; the topic words above stand in
    when it does not.
    """
    if not folded or _OURS.search(folded):
        return False
    if out_of_domain is not None:
        return out_of_domain
    return _ELSEWHERE.search(folded) is not None
