"""The domain's closed vocabularies: code names used in the database, Japanese words on screens.

Shared by the importer (which reads the Japanese words from the CSV) and the lookups
(which show them), so both always agree.
"""

PUBLICATIONS = ("jma_news", "journal_regular", "journal_special")
PUBLICATION_JA = {
    "jma_news": "日医ニュース",
    "journal_regular": "日本医師会雑誌通常号",
    "journal_special": "日本医師会雑誌特別号",
}
DESTINATION_JA = {"workplace": "勤務先", "home": "自宅", "other": "その他"}
STATUS_JA = {"active": "在籍", "pending": "入会手続中", "withdrawn": "退会"}
