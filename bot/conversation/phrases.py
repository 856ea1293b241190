"""The core's own sentences (everything else it says comes from the knowledge base or the records).

No screen words and no commands here: where a reply needs one (where to sign in, what an
administrator runs), it carries a typed hint (bot/conversation/actions.py) and the channel words it.
Sentences that name the desk hold `{desk}`, filled with `BusinessHours.contact()` (bot/desk/hours.py) by
whoever says them, since the desk's number and hours are settings.
"""
from __future__ import annotations

from bot.conversation.buttons import HANDOFF_PAYLOAD

GREETING_TEXT = (
    "MAMISヘルプデスクです。MAMIS（医師会会員情報システム）についてのご質問に、ナレッジベースの記事から"
    "お答えします。知りたいことを文章で入力してください。"
)
THANKS_TEXT = "どういたしまして。ほかにもご不明な点があれば、お気軽にご質問ください。"
HELP_TEXT = (
    "MAMISヘルプデスクの使い方です。\n"
    "・知りたいことを文章で入力してください（例：「日医ニュースの送付先を自宅に変更したい」）。\n"
    "・回答には、もとになった記事へのリンクと、その記事の更新日を表示します。\n"
    "・答えが一つに絞れないときは「もしかして」として候補を表示します。選ぶとその記事からお答えします。\n"
    "・「それはいつですか」「場所は？」のように、直前の話題に続けて質問できます。\n"
    f"・担当者と話したいときは「{HANDOFF_PAYLOAD}」と入力してください。{{desk}}をご案内します。"
)
HANDOFF_TEXT = "担当者へのご相談は、{desk}で承ります。お電話でお問い合わせください。"
HANDOFF_MEMBER_NOTE = "会員の先生方は、ご所属の医師会事務局にもご相談いただけます。"
CHOICES_TEXT = "はっきりとお答えできる記事が見つかりませんでした。もしかして、次のいずれかについてのご質問でしょうか。"
UNKNOWN_TEXT = (
    "申し訳ありません。ご質問にお答えできる記事が見つかりませんでした。"
    "別の言葉で言い換えていただくか、{desk}へお問い合わせください。"
)
OUT_OF_SCOPE_TEXT = (
    "MAMISに関するご質問にお答えしています。MAMISの操作や手続きについて、知りたいことを入力してください。"
    "ご不明な点は{desk}へお問い合わせください。"
)
NO_ARTICLE_TEXT = "お探しの記事が見つかりませんでした。ご質問を文章で入力してください。"
STALE_BUTTON_TEXT = "この選択肢は使えなくなりました。お手数ですが、もう一度ご質問を入力してください。"
NEXT_STEP_TEXT = "お役に立てず申し訳ありません。"
NEXT_STEP_REPHRASE = "別の言葉で言い換えて、もう一度ご質問いただけますか。"
NEXT_STEP_CHOICES = "もしかして、次のいずれかについてのご質問でしょうか。"
NEXT_STEP_DESK = "解決しない場合は、{desk}へお問い合わせください。"
STAFF_AUDIENCE_NOTE = "※この記事は医師会事務局の職員向けに書かれています。"
STAFF_NOTE = (
    "\n{name}としてログインしています。会員番号（7桁）や先生のお名前、医療機関名で、入会手続きの状況・送付先・"
    "医療機関マスタへの掲載・かかりつけ医機能報告を照会できます（例：「会員番号1234567の入会手続きはどこまで"
    "進んでいますか」「〇〇クリニックはマスタに載っていますか」「△△先生の日医ニュースの送付先は」）。"
)
STAFF_HELP = (
    "\n・職員としてログイン中は、会員番号・申請番号・医療機関コード・先生のお名前（「〇〇先生」）・医療機関名で"
    "記録を照会できます。下のボタンからも始められます。\n"
    "・会員の先生が Telegram のアカウントを連携するための連携コード（15分間・1回限り）を発行できます。"
)
CUT_NOTE = "（続きはリンク先の記事をご覧ください）"
