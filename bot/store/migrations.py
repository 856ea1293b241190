"""Every migration of the help desk database (helpdesk.sqlite), in order, as the SQL first shipped.

This list is frozen: a migration that has shipped is never edited, because the `migrations` table
records only its name, so an existing database never runs it again. A change is a new migration at the
end. Nothing here is built from code that may change later (0005 once built its CHECK from
`bot.conversation.state.STATES`: a state added afterwards would have reached new databases and not upgraded ones).
The text of each statement is kept byte for byte, indentation included, because SQLite stores a
CREATE statement's text in the schema: a new database and an upgraded one must have the same schema
(tests/test_migrations.py checks both, and that the CHECKs list exactly the states declared in
bot/conversation/state.py and bot/desk/tickets.py).

Applied by `bot.store.database.Store.migrate`, each in one transaction with its row (storage/sqlite.py).
"""
from __future__ import annotations

from storage.sqlite import Migration

MIGRATIONS: list[Migration] = [
    (
        "0001_initial",
        [
            """
            CREATE TABLE conversations (
                id TEXT PRIMARY KEY,
                token_hash TEXT NOT NULL,
                channel TEXT NOT NULL,
                asker_role TEXT NOT NULL,
                created_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                conversation_id TEXT NOT NULL REFERENCES conversations(id),
                role TEXT NOT NULL CHECK (role IN ('user', 'bot')),
                text TEXT NOT NULL,
                reply TEXT,
                in_reply_to INTEGER REFERENCES messages(id),
                idempotency_key TEXT,
                created_at TEXT NOT NULL,
                UNIQUE (conversation_id, idempotency_key)
            )
            """,
            "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
            """
            CREATE TABLE feedback (
                message_id INTEGER PRIMARY KEY REFERENCES messages(id),
                helpful INTEGER NOT NULL CHECK (helpful IN (0, 1)),
                created_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE unanswered (
                id INTEGER PRIMARY KEY,
                conversation_id TEXT NOT NULL REFERENCES conversations(id),
                message_id INTEGER NOT NULL REFERENCES messages(id),
                text TEXT NOT NULL,
                confidence REAL,
                channel TEXT NOT NULL,
                asker_role TEXT NOT NULL,
                created_at TEXT NOT NULL
            )
            """,
        ],
    ),
    (
        "0002_staff_accounts",
        [
            # Secretariat staff who sign in to the web chat. login_id is compared case-insensitively;
            # password_hash is an argon2id PHC string (parameters included, so old hashes still verify).
            """
            CREATE TABLE staff (
                id INTEGER PRIMARY KEY,
                login_id TEXT NOT NULL UNIQUE COLLATE NOCASE,
                display_name TEXT NOT NULL,
                level TEXT NOT NULL CHECK (level IN ('county', 'prefecture')),
                association_code TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                demo INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1)),
                created_at TEXT NOT NULL,
                last_sign_in_at TEXT
            )
            """,
            # The account that opened a conversation (NULL: anonymous); nobody else may use it, so a
            # staff member's lookups never reach whoever holds the conversation token after sign-out.
            "ALTER TABLE conversations ADD COLUMN owner TEXT",
        ],
    ),
    (
        "0003_link_codes",
        [
            # One-time codes with which a doctor links a messaging account to their member number.
            """
            CREATE TABLE link_codes (
                id INTEGER PRIMARY KEY,
                code_hash TEXT NOT NULL UNIQUE,
                member_number TEXT NOT NULL CHECK (length(member_number) = 7),
                issued_by TEXT NOT NULL,
                issued_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                used_at TEXT,
                used_channel TEXT
            )
            """,
            """
            CREATE TABLE member_links (
                channel TEXT NOT NULL,
                external_user_id TEXT NOT NULL,
                member_number TEXT NOT NULL CHECK (length(member_number) = 7),
                link_code_id INTEGER NOT NULL REFERENCES link_codes(id),
                linked_at TEXT NOT NULL,
                PRIMARY KEY (channel, external_user_id)
            )
            """,
        ],
    ),
    (
        "0004_redacted_transcripts",
        [
            # Each message as it may leave the asker's own view (the desk, logs): identifiers and
            # names masked. Messages stored before this migration are masked when read.
            "ALTER TABLE messages ADD COLUMN redacted TEXT",
        ],
    ),
    (
        "0005_conversation_state",
        [
            # Declared in bot/conversation/state.py; every conversation so far was with the bot.
            "ALTER TABLE conversations ADD COLUMN state TEXT NOT NULL DEFAULT 'bot' CHECK (state IN ('bot', 'waiting_desk', 'with_agent', 'closed'))",
        ],
    ),
    (
        "0006_agent_messages",
        [
            # A CHECK constraint cannot be altered in SQLite, so `messages` is rebuilt: the rows that
            # refer to it (feedback, unanswered) are set aside, the table is copied into its new form
            # with every row and id, the old one dropped and the new one renamed, and the set-aside rows
            # put back. Foreign keys are deferred to the commit, where they must all hold again.
            "PRAGMA defer_foreign_keys = ON",
            "CREATE TEMP TABLE feedback_kept AS SELECT * FROM feedback",
            "CREATE TEMP TABLE unanswered_kept AS SELECT * FROM unanswered",
            "DELETE FROM feedback",
            "DELETE FROM unanswered",
            """
            CREATE TABLE messages_new (
                id INTEGER PRIMARY KEY,
                conversation_id TEXT NOT NULL REFERENCES conversations(id),
                role TEXT NOT NULL CHECK (role IN ('user', 'bot', 'agent')),
                text TEXT NOT NULL,
                reply TEXT,
                in_reply_to INTEGER REFERENCES messages_new(id),
                idempotency_key TEXT,
                created_at TEXT NOT NULL,
                redacted TEXT,
                author TEXT,
                button TEXT,
                UNIQUE (conversation_id, idempotency_key)
            )
            """,
            # author: the agent's display name on agent messages; button: the button id a user pressed.
            """
            INSERT INTO messages_new (id, conversation_id, role, text, reply, in_reply_to, idempotency_key,
                                      created_at, redacted)
            SELECT id, conversation_id, role, text, reply, in_reply_to, idempotency_key, created_at, redacted
            FROM messages ORDER BY id
            """,
            "DROP TABLE messages",
            "ALTER TABLE messages_new RENAME TO messages",
            "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
            "INSERT INTO feedback SELECT * FROM feedback_kept",
            "INSERT INTO unanswered SELECT * FROM unanswered_kept",
            "DROP TABLE feedback_kept",
            "DROP TABLE unanswered_kept",
        ],
    ),
    (
        "0007_chat_identities",
        [
            # A messaging chat (a Telegram chat id) has one conversation, found by channel and chat id.
            "ALTER TABLE conversations ADD COLUMN external_chat_id TEXT",
            """
            CREATE UNIQUE INDEX conversations_by_chat ON conversations (channel, external_chat_id)
            WHERE external_chat_id IS NOT NULL
            """,
        ],
    ),
    (
        "0008_staff_sessions",
        [
            # Staff sign-ins held on the server (bot/accounts/staff.py): the cookie carries only a random
            # token, whose hash is kept here, so signing out (or an administrator) can end a session
            # and a copied cookie is worthless afterwards.
            """
            CREATE TABLE staff_sessions (
                id INTEGER PRIMARY KEY,
                token_hash TEXT NOT NULL UNIQUE,
                staff_id INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
                created_at TEXT NOT NULL,
                last_seen_at TEXT NOT NULL,
                ended_at TEXT
            )
            """,
            "CREATE INDEX staff_sessions_by_staff ON staff_sessions (staff_id)",
        ],
    ),
    (
        "0009_outbox",
        [
            """
            CREATE TABLE channel_inbox (
                channel TEXT NOT NULL,
                update_id INTEGER NOT NULL,
                chat_id TEXT,
                payload TEXT NOT NULL,
                received_at TEXT NOT NULL,
                done_at TEXT,
                PRIMARY KEY (channel, update_id)
            )
            """,
            "CREATE INDEX channel_inbox_pending ON channel_inbox (channel, update_id) WHERE done_at IS NULL",
            """
            CREATE TABLE outbox (
                id INTEGER PRIMARY KEY,
                channel TEXT NOT NULL,
                chat_id TEXT NOT NULL,
                key TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('reply', 'notification')),
                payload TEXT NOT NULL,
                created_at TEXT NOT NULL,
                not_before REAL NOT NULL DEFAULT 0,
                claimed_by TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                sent_at TEXT,
                failed TEXT,
                UNIQUE (channel, key)
            )
            """,
            "CREATE INDEX outbox_pending ON outbox (channel, id) WHERE sent_at IS NULL AND failed IS NULL",
            """
            CREATE TABLE channel_chats (
                channel TEXT NOT NULL,
                chat_id TEXT NOT NULL,
                user_id TEXT,
                notify INTEGER NOT NULL DEFAULT 0 CHECK (notify IN (0, 1)),
                unreachable_at TEXT,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (channel, chat_id)
            )
            """,
            """
            CREATE TABLE channel_meta (
                channel TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (channel, key)
            )
            """,
        ],
    ),
    ("0010_tickets", [
    # (These statements keep the indentation they shipped with in bot/desk/tickets.py: see above.)
    # Desk agents: role `desk`, no association. login ids never collide with staff ids in practice,
    # and the two tables are never joined.
    """
    CREATE TABLE agents (
        id INTEGER PRIMARY KEY,
        login_id TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        demo INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1)),
        created_at TEXT NOT NULL,
        last_sign_in_at TEXT
    )
    """,
    # `number` is what the user is told (お問い合わせ番号 #1042). start_message_id is the last message
    # of the conversation when the ticket was made: later messages are the ticket's thread.
    """
    CREATE TABLE tickets (
        number INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'open', 'pending', 'resolved', 'closed')),
        priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
        assignee TEXT,
        channel TEXT NOT NULL,
        asker_role TEXT NOT NULL,
        asker_name TEXT,
        association_code TEXT,
        association_name TEXT,
        reason TEXT NOT NULL,
        note TEXT,
        subject TEXT NOT NULL,
        transcript TEXT NOT NULL,
        articles TEXT NOT NULL,
        unfound TEXT NOT NULL,
        start_message_id INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        first_response_at TEXT,
        resolved_at TEXT,
        closed_at TEXT,
        unreachable_at TEXT
    )
    """,
    # At most one unfinished ticket per conversation: pressing the button twice finds the first.
    "CREATE UNIQUE INDEX tickets_one_active ON tickets (conversation_id) WHERE state IN ('new', 'open', 'pending')",
    "CREATE INDEX tickets_by_state ON tickets (state, number)",
    "CREATE INDEX tickets_by_conversation ON tickets (conversation_id, number)",
    "CREATE INDEX tickets_by_created ON tickets (created_at)",
    """
    CREATE TABLE ticket_events (
        id INTEGER PRIMARY KEY,
        ticket_number INTEGER NOT NULL REFERENCES tickets(number),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        message_id INTEGER REFERENCES messages(id)
    )
    """,
    "CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_number, id)",
    "CREATE INDEX ticket_events_by_message ON ticket_events (message_id) WHERE message_id IS NOT NULL",
    """
    CREATE TABLE saved_replies (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL
    )
    """,
    """
    INSERT INTO saved_replies (title, body) VALUES
    ('お問い合わせのお礼', 'お問い合わせいただきありがとうございます。MAMIS運営事務局の担当です。'),
    ('確認して折り返します', '内容を確認のうえ、あらためてご連絡いたします。今しばらくお待ちください。'),
    ('解決の確認', 'ご案内した方法で解決しましたでしょうか。ほかにもご不明な点があれば、このままご返信ください。'),
    ('医師会事務局へのご相談', '会員情報の変更は、ご所属の医師会事務局で承っております。お手数ですが、医師会事務局へご相談ください。')
    """,
    ]),
    # The queue's counts per state under a filter read one of these indexes alone, never the wide rows
    # (each carries its transcript): a filtered count over 50,000 tickets takes milliseconds.
    ("0011_ticket_filters", [
        "CREATE INDEX tickets_by_channel ON tickets (channel, state)",
        "CREATE INDEX tickets_by_assignee ON tickets (assignee, state)",
        "CREATE INDEX tickets_by_association ON tickets (association_code, state)",
        "CREATE INDEX tickets_by_state_age ON tickets (state, created_at)",
    ]),
    # Agent sign-ins held on the server like the staff's (0008): signing out of the console ends the
    # session for every copy of the cookie; removing an agent removes their sessions with them.
    ("0012_agent_sessions", [
        """
        CREATE TABLE agent_sessions (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            ended_at TEXT
        )
        """,
        "CREATE INDEX agent_sessions_by_agent ON agent_sessions (agent_id)",
    ]),
    # Who has a ticket page open: each page's held request for news (/desk/tickets/<n>/live) marks its
    # agent here, in wall-clock seconds (a liveness signal, not a record: never in the audit log).
    ("0013_ticket_viewers", [
        """
        CREATE TABLE ticket_viewers (
            ticket_number INTEGER NOT NULL REFERENCES tickets(number),
            agent TEXT NOT NULL,
            seen_at REAL NOT NULL,
            PRIMARY KEY (ticket_number, agent)
        ) WITHOUT ROWID
        """,
    ]),
    (
        "0014_accounts",
        [
            # Staff (0002) and desk agents (0010) become one table told apart by role, and their
            # sessions (0008, 0012) one table (bot/accounts/staff.py says why). Every account keeps its login
            # id, password hash, demo flag and times, so everyone signs in as before; staff keep their
            # ids (a removed one's conversations name it), agents are numbered after them; every
            # session keeps its token hash and times, so signed-in browsers stay signed in.
            """
            CREATE TABLE accounts (
                id INTEGER PRIMARY KEY,
                role TEXT NOT NULL CHECK (role IN ('staff', 'desk')),
                login_id TEXT NOT NULL COLLATE NOCASE,
                display_name TEXT NOT NULL,
                level TEXT CHECK (level IN ('county', 'prefecture')),
                association_code TEXT,
                password_hash TEXT NOT NULL,
                demo INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1)),
                created_at TEXT NOT NULL,
                last_sign_in_at TEXT,
                UNIQUE (role, login_id),
                CHECK (CASE role WHEN 'staff' THEN level IS NOT NULL AND association_code IS NOT NULL
                                 ELSE level IS NULL AND association_code IS NULL END)
            )
            """,
            """
            INSERT INTO accounts (id, role, login_id, display_name, level, association_code, password_hash, demo,
                                  created_at, last_sign_in_at)
            SELECT id, 'staff', login_id, display_name, level, association_code, password_hash, demo,
                   created_at, last_sign_in_at
            FROM staff ORDER BY id
            """,
            """
            INSERT INTO accounts (role, login_id, display_name, password_hash, demo, created_at, last_sign_in_at)
            SELECT 'desk', login_id, display_name, password_hash, demo, created_at, last_sign_in_at
            FROM agents ORDER BY id
            """,
            """
            CREATE TABLE account_sessions (
                id INTEGER PRIMARY KEY,
                token_hash TEXT NOT NULL UNIQUE,
                account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                created_at TEXT NOT NULL,
                last_seen_at TEXT NOT NULL,
                ended_at TEXT
            )
            """,
            "CREATE INDEX account_sessions_by_account ON account_sessions (account_id)",
            """
            INSERT INTO account_sessions (token_hash, account_id, created_at, last_seen_at, ended_at)
            SELECT token_hash, staff_id, created_at, last_seen_at, ended_at FROM staff_sessions ORDER BY id
            """,
            """
            INSERT INTO account_sessions (token_hash, account_id, created_at, last_seen_at, ended_at)
            SELECT s.token_hash, a.id, s.created_at, s.last_seen_at, s.ended_at
            FROM agent_sessions AS s
            JOIN agents AS g ON g.id = s.agent_id
            JOIN accounts AS a ON a.role = 'desk' AND a.login_id = g.login_id
            ORDER BY s.id
            """,
            # Sessions first: dropping an account table deletes its rows, which would cascade to them.
            "DROP TABLE staff_sessions",
            "DROP TABLE agent_sessions",
            "DROP TABLE staff",
            "DROP TABLE agents",
        ],
    ),
]
