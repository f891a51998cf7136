"""Reply keys: found wherever clients put them, and impossible to forge."""

from service.reply_keys import ReplyKey, find_keys, safe_id

SECRET = b"office-secret"


def test_a_key_is_found_in_message_ids_plus_addresses_and_quoted_text():
    key = ReplyKey("inv", "m2569-11", safe_id("p-school-001"))
    token = key.token(SECRET)
    assert token.startswith("inv-m2569-11-p_school_001-")
    for place in (f"<{token}.1a2b3c@office.go.th>", f"meeting+{token}@office.go.th", f"> รหัสอ้างอิง: {token.upper()}"):
        assert find_keys(place, SECRET) == [key]


def test_a_forged_or_foreign_key_is_ignored():
    token = ReplyKey("appr", "m1", "p_director").token(SECRET)
    forged = token[:-8] + "aaaaaaaa"
    assert find_keys(forged, SECRET) == []
    assert find_keys(token, b"another-office") == []
    assert find_keys(token.replace("p_director", "p_clerk"), SECRET) == []
