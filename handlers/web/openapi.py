"""The OpenAPI 3 description of the JSON API, served at /api/openapi.json.

Hand-written, next to the API it describes; tests check that every route of the API blueprint
appears here, so the two cannot drift apart silently.
"""
from __future__ import annotations

from bot.model import REPLY_KINDS

#: An idempotency key: 1 to 128 printable ASCII characters (handlers.web.api checks the same pattern).
IDEMPOTENCY_KEY_PATTERN = r"[\x21-\x7e]{1,128}"


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def handoff_and_link_paths(bearer: list, conversation_id: dict) -> dict:
    """Handing a conversation to the operations desk (handlers/desk/api.py) and the Telegram deep link
    of a link code (handlers/web/qr.py)."""
    from bot.desk.handoff import NOTE_CHARS

    code = {"name": "code", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}
    ticket = {"type": "object", "properties": {
        "ticket": {"type": "object", "properties": {"number": {"type": "integer"}, "state": {"type": "string"},
                                                    "created_at": {"type": "string", "format": "date-time"}}},
        "message": {"type": "string"}}}
    no_bot = _error("Telegram ボットがまだ一度も起動していない (not_found)")
    return {
        "/api/conversations/{conversation_id}/handoff": {
            "parameters": [conversation_id],
            "post": {
                "summary": "会話を運営事務局に引き継ぐ（担当者への問い合わせ）。未完了のチケットがあればそれを返す",
                "security": bearer,
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"note": {"type": "string", "maxLength": NOTE_CHARS}}}}}},
                "responses": {
                    "201": {"description": "作成したチケット", "content": {"application/json": {"schema": ticket}}},
                    "200": {"description": "既にある未完了のチケット", "content": {"application/json": {"schema": ticket}}},
                    "400": _error("JSON として読めない (invalid_json)"),
                    "404": _error("会話がない、または token が違う (conversation_not_found)"),
                    "422": _error("note が長すぎる・文字列でない (invalid_field)、使えない文字 (invalid_text)"),
                    "429": _error("送信が多すぎる (rate_limited)"),
                },
            },
        },
        "/api/conversations/{conversation_id}/new-question": {
            "parameters": [conversation_id],
            "post": {
                "summary": "チケットが未完了のまま利用者が「新しい質問」を始めたことを運営事務局に伝える（チケットはこの会話に残る）",
                "security": bearer,
                "responses": {
                    "200": {"description": "未完了のチケット（なければ null）", "content": {"application/json": {
                        "schema": {"type": "object", "properties": {"ticket": {"type": ["object", "null"]}}}}}},
                    "400": _error("JSON として読めない (invalid_json)"),
                    "404": _error("会話がない、または token が違う (conversation_not_found)"),
                    "429": _error("送信が多すぎる (rate_limited)"),
                },
            },
        },
        "/api/telegram/link/{code}": {
            "get": {
                "summary": "連携コードの Telegram ディープリンクと、その QR コードの URL",
                "parameters": [code],
                "responses": {
                    "200": {"description": "リンク", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"url": {"type": "string"}, "qr": {"type": "string"}}}}}},
                    "404": no_bot,
                },
            }
        },
        "/api/telegram/link/{code}.svg": {
            "get": {
                "summary": "連携コードの Telegram ディープリンクの QR コード（SVG）",
                "parameters": [code],
                "responses": {"200": {"description": "QR コード", "content": {"image/svg+xml": {}}}, "404": no_bot},
            }
        },
    }


def openapi_spec(max_chars: int = 2000, suggest_chars: int = 200) -> dict:
    bearer = [{"conversationToken": []}]
    conversation_id = {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "MAMIS ヘルプデスク API",
            "version": "1",
            "description": (
                "MAMIS（医師会会員情報システム）ヘルプデスクのチャット API。会話を作成すると id と token が返り、"
                "その会話の読み書きには `Authorization: Bearer <token>` が必要です（token がない・違う場合は 404）。"
                "職員ログイン中（セッション Cookie）に作成した会話はその職員のもので、ほかの人には 404 です。"
                "ログイン中の更新系リクエスト（POST・DELETE）には、GET /api/session で受け取った csrf_token を "
                "`X-CSRFToken` ヘッダーで付けてください。"
                "エラーは常に `{\"error\": {\"code\", \"message\"}}` の形で返ります。"
            ),
        },
        "paths": {
            "/api/health": {"get": {"summary": "稼働確認", "responses": {"200": {"description": "稼働中"}}}},
            "/api/openapi.json": {"get": {"summary": "この API 仕様", "responses": {"200": {"description": "OpenAPI 3 文書"}}}},
            "/api/conversations": {
                "post": {
                    "summary": "会話を開始する",
                    "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "201": {"description": "作成した会話。token はこの応答でしか返りません",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewConversation"}}}},
                        "400": _error("本文が JSON オブジェクトではない (invalid_json)"),
                        "429": _error("送信が多すぎる (rate_limited)"),
                    },
                }
            },
            "/api/conversations/{conversation_id}/messages": {
                "parameters": [conversation_id],
                "post": {
                    "summary": "質問を送り、回答を受け取る",
                    "description": (
                        "同じ idempotency_key（本文または Idempotency-Key ヘッダー）で再送すると、保存も回答も1回だけで、"
                        "最初の結果が 200 で返ります。"
                    ),
                    "security": bearer,
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "maxLength": 128,
                                               "pattern": f"^{IDEMPOTENCY_KEY_PATTERN}$"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "anyOf": [{"required": ["text"]}, {"required": ["button"]}],
                        "properties": {
                            "text": {"type": "string", "minLength": 1, "maxLength": max_chars},
                            "button": {"type": "string", "minLength": 1, "maxLength": 64,
                                       "description": "押されたボタンの id（64バイト以内）。text はそのとき利用者の発言として表示した短い文"},
                            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 128,
                                                "pattern": f"^{IDEMPOTENCY_KEY_PATTERN}$"},
                        },
                    }}}},
                    "responses": {
                        "201": {"description": "保存した質問と回答", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Exchange"}}}},
                        "200": {"description": "同じ送信キーで既に回答済み: 最初の結果", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Exchange"}}}},
                        "400": _error("JSON として読めない (invalid_json)"),
                        "404": _error("会話がない、または token が違う (conversation_not_found)"),
                        "409": _error("送信キーが別の質問に使われている (idempotency_conflict)"),
                        "422": _error("空 (empty_message)、長すぎる (message_too_long)、型が違う (invalid_field)、"
                                      "使えない文字 (invalid_text)"),
                        "429": _error("送信が多すぎる (rate_limited)"),
                        "503": _error("索引が未作成 (index_missing)"),
                    },
                },
                "get": {
                    "summary": "会話の履歴（古い順）。after を付けると、そのメッセージより新しいものだけ（担当者の返信の確認に）",
                    "security": bearer,
                    "parameters": [{"name": "after", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 0},
                                    "description": "最後に受け取ったメッセージの id。これより新しいメッセージだけを返します"},
                                   {"name": "wait", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 0, "maximum": 30},
                                    "description": "after と一緒に指定すると、新しいメッセージが届くか、この秒数が過ぎるまで"
                                                   "応答を保留します（ロングポーリング）。サーバーの待機枠が埋まっているときはすぐに応答します"},
                                   {"name": "include", "in": "query", "required": False,
                                    "schema": {"type": "string", "enum": ["desk"]},
                                    "description": "desk を指定すると、配列の代わりに {messages, desk} を返します"
                                                   "（desk: 運営事務局が対応中か、とその問い合わせ番号）"}],
                    "responses": {
                        "200": {"description": "メッセージの配列（include=desk なら MessagesWithDesk）",
                                "content": {"application/json": {"schema": {"oneOf": [
                                    {"$ref": "#/components/schemas/Messages"},
                                    {"$ref": "#/components/schemas/MessagesWithDesk"}]}}}},
                        "404": _error("会話がない、または token が違う (conversation_not_found)"),
                        "400": _error("wait が 0〜30 の整数でない (invalid_parameter)"),
                        "422": _error("after が整数でない (invalid_field)"),
                    },
                },
            },
            "/api/messages/{message_id}/feedback": {
                "post": {
                    "summary": "回答の評価（役に立った / 役に立たなかった）。最後の評価が有効",
                    "security": bearer,
                    "parameters": [{"name": "message_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["helpful"], "properties": {"helpful": {"type": "boolean"}}}}}},
                    "responses": {
                        "200": {"description": "記録した評価。役に立たなかった（false）ときは reply に次の一手"
                                               "（もしかして・言い換え・担当者）", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["id", "feedback"],
                            "properties": {"id": {"type": "integer"}, "feedback": {"type": "boolean"},
                                           "reply": {"$ref": "#/components/schemas/BotMessage"}}}}}},
                        "400": _error("JSON として読めない (invalid_json)"),
                        "404": _error("メッセージがない、または token が違う (message_not_found)"),
                        "422": _error("helpful が真偽値でない (invalid_field)、回答でないメッセージ (not_a_reply)、"
                                      "使えない文字 (invalid_text)"),
                    },
                }
            },
            **handoff_and_link_paths(bearer, conversation_id),
            "/api/session": {
                "get": {
                    "summary": "ログイン状態と CSRF トークン",
                    "description": "ウィジェットは最初にこれを呼び、csrf_token を以後の POST・DELETE の X-CSRFToken ヘッダーに付けます。",
                    "responses": {"200": {"description": "ログイン状態", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}}},
                },
                "post": {
                    "summary": "職員ログイン",
                    "description": ("セッション Cookie（HttpOnly、SameSite=Lax、HTTPS では Secure）を発行します。"
                                    "ログインIDが存在しない場合もパスワードが違う場合も同じ 401 です。"
                                    "試行回数は IP アドレスごと・ログインIDごとに制限されます。"),
                    "security": [{"csrfToken": []}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["login_id", "password"],
                        "properties": {"login_id": {"type": "string"}, "password": {"type": "string"}}}}}},
                    "responses": {
                        "200": {"description": "ログインした状態", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}},
                        "400": _error("CSRF トークンがない・違う (csrf_failed)、JSON として読めない (invalid_json)"),
                        "401": _error("ログインIDまたはパスワードが違う (sign_in_failed)"),
                        "429": _error("試行が多すぎる (sign_in_rate_limited)"),
                    },
                },
                "delete": {
                    "summary": "ログアウト",
                    "security": [{"csrfToken": []}],
                    "responses": {
                        "200": {"description": "ログアウトした状態（新しい csrf_token つき）",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}},
                        "400": _error("CSRF トークンがない・違う (csrf_failed)"),
                    },
                },
            },
            "/api/link-codes": {
                "post": {
                    "summary": "会員の連携コードを発行する（ログイン中の職員のみ）",
                    "description": ("会員が Telegram のアカウントを会員番号に連携するための、8文字・1回限りのコード。"
                                    "有効期限は LINK_CODE_MINUTES 分（既定 15 分）。コードはこの応答でしか返りません（保存はハッシュのみ）。"
                                    "自分の医師会の範囲外の会員番号は、存在しない番号と同じ 404 です。"),
                    "security": [{"csrfToken": []}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["member_number"],
                        "properties": {"member_number": {"type": "string", "pattern": "^[0-9]{7}$"}}}}}},
                    "responses": {
                        "201": {"description": "発行したコード", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LinkCode"}}}},
                        "400": _error("CSRF トークンがない・違う (csrf_failed)"),
                        "401": _error("ログインしていない (sign_in_required)"),
                        "404": _error("該当する記録が見つからないか、閲覧する権限がない (record_unavailable)"),
                        "422": _error("会員番号の形式が違う (invalid_query, invalid_field)、退会した会員 (withdrawn_member)"),
                        "429": _error("発行が多すぎる (rate_limited)"),
                        "503": _error("会員データが未作成 (records_missing)"),
                    },
                }
            },
            "/api/suggest": {
                "get": {
                    "summary": "入力中の文に合う記事の質問例（最大3件）",
                    "parameters": [{"name": "q", "in": "query", "required": False, "schema": {"type": "string", "maxLength": suggest_chars}}],
                    "responses": {
                        "200": {"description": "候補", "content": {"application/json": {"schema": {
                            "type": "object", "properties": {"suggestions": {"type": "array", "maxItems": 3,
                                                                             "items": {"$ref": "#/components/schemas/Suggestion"}}}}}}},
                        "422": _error("長すぎる (query_too_long)"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "conversationToken": {"type": "http", "scheme": "bearer", "description": "会話作成時に返る token"},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                              "description": "GET /api/session の csrf_token（セッション Cookie と組で有効）"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string", "description": "日本語の説明と次にすること"}}}}},
                "NewConversation": {"type": "object", "required": ["id", "token", "created_at"], "properties": {
                    "id": {"type": "string"}, "token": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}}},
                "Source": {"type": "object", "properties": {
                    "slug": {"type": "string"}, "title": {"type": "string"}, "url": {"type": "string"},
                    "updated": {"type": "string", "format": "date"}}},
                "Button": {"type": "object", "properties": {
                    "label": {"type": "string"},
                    "id": {"type": "string", "maxLength": 64, "description": "押されたら button として送る"},
                    "echo": {"type": "string", "nullable": True, "description": "押したときに利用者の発言として表示する短い文"},
                    "payload": {"type": "string", "description": "ボタン id を送れない利用者が text として送る文"}}},
                "AgentMessage": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "role": {"type": "string", "enum": ["agent"]}, "text": {"type": "string"},
                    "author": {"type": "string", "nullable": True}, "created_at": {"type": "string", "format": "date-time"}}},
                "UserMessage": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "role": {"type": "string", "enum": ["user"]}, "text": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"}, "idempotency_key": {"type": "string", "nullable": True}}},
                "BotMessage": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "role": {"type": "string", "enum": ["bot"]}, "text": {"type": "string"},
                    "kind": {"type": "string", "enum": list(REPLY_KINDS)},
                    "sources": {"type": "array", "items": {"$ref": "#/components/schemas/Source"}},
                    "buttons": {"type": "array", "items": {"$ref": "#/components/schemas/Button"}},
                    "actions": {"type": "array", "items": {"type": "object", "properties": {
                        "type": {"type": "string", "enum": ["offer_escalation", "handoff"]}}}},
                    "table": {"allOf": [{"$ref": "#/components/schemas/Table"}], "nullable": True},
                    "confidence": {"type": "number", "nullable": True, "minimum": 0, "maximum": 1},
                    "created_at": {"type": "string", "format": "date-time"},
                    "in_reply_to": {"type": "integer", "nullable": True,
                                    "description": "答えた利用者のメッセージの id（引き継ぎの知らせなど、答える相手のないものは null）"},
                    "feedback": {"type": "boolean", "nullable": True}}},
                "Messages": {"type": "array", "items": {"oneOf": [
                    {"$ref": "#/components/schemas/UserMessage"}, {"$ref": "#/components/schemas/BotMessage"},
                    {"$ref": "#/components/schemas/AgentMessage"}]}},
                "MessagesWithDesk": {"type": "object", "required": ["messages", "desk"], "properties": {
                    "messages": {"$ref": "#/components/schemas/Messages"},
                    "desk": {"$ref": "#/components/schemas/DeskHold"}}},
                "DeskHold": {"type": "object", "required": ["held", "ticket"],
                             "description": "運営事務局（担当者）が会話を引き受けているか。対応中はボットは答えず、担当者の返信が届く",
                             "properties": {
                                 "held": {"type": "boolean"},
                                 "ticket": {"type": "integer", "nullable": True, "description": "対応中の問い合わせ番号"}}},
                "Exchange": {"type": "object", "required": ["message", "reply", "desk"], "properties": {
                    "message": {"$ref": "#/components/schemas/UserMessage"},
                    "reply": {"allOf": [{"$ref": "#/components/schemas/BotMessage"}], "nullable": True,
                              "description": "担当者が対応中の会話ではボットは答えず null"},
                    "desk": {"$ref": "#/components/schemas/DeskHold"}}},
                "Table": {"type": "object", "description": "照会結果の小さな表（text の後に表示。textContent で挿入）", "properties": {
                    "caption": {"type": "string"}, "columns": {"type": "array", "items": {"type": "string"}},
                    "rows": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}}},
                "Session": {"type": "object", "required": ["signed_in", "staff", "quick_actions", "csrf_token"], "properties": {
                    "signed_in": {"type": "boolean"},
                    "staff": {"type": "object", "nullable": True, "properties": {
                        "login_id": {"type": "string"}, "display_name": {"type": "string"},
                        "level": {"type": "string", "enum": ["county", "prefecture"]},
                        "association_code": {"type": "string"}, "association_name": {"type": "string"}}},
                    "quick_actions": {"type": "array", "items": {"$ref": "#/components/schemas/Button"}},
                    "csrf_token": {"type": "string"}}},
                "LinkCode": {"type": "object", "required": ["code", "member_number", "expires_at"], "properties": {
                    "code": {"type": "string", "pattern": "^[A-HJKMNP-Z2-9]{8}$"},
                    "member_number": {"type": "string"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "telegram": {"type": "object", "nullable": True,
                                 "description": "Telegram のディープリンクと QR コード（SVG）の URL。ボット未起動なら null",
                                 "properties": {"url": {"type": "string"}, "qr": {"type": "string"}}}}},
                "Suggestion": {"type": "object", "properties": {
                    "slug": {"type": "string"}, "title": {"type": "string"}, "question": {"type": "string"}}},
            },
        },
    }
