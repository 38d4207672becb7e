"""Messages composed to bytes read back as the same message by a standard parser."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from clientela.messaging.compose import Envelope, compose
from clientela.messaging.templates import Rendered


def test_non_ascii_headers_and_long_lines_survive_the_wire():
    text = "Olá, João! " + "ç" * 1500 + "\nfim"
    html = "<p>" + "Promoção " * 300 + "</p>\r\n<p>fim</p>"
    outgoing = compose(Rendered(subject="Promoção de Natal ☃ para você", html=html, text=text),
                       Envelope(sender="Loja São João <news@loja.example>",
                                to="joao@example.com", message_id="<c1.d2.ab@loja.example>",
                                unsubscribe_url="https://crm.loja.example/u/abc.def",
                                date=datetime(2026, 11, 22, 12, 30, tzinfo=UTC)))
    assert (outgoing.mail_from, outgoing.to) == ("news@loja.example", "joao@example.com")
    assert all(len(line) <= 998 for line in outgoing.data.split(b"\r\n"))
    assert b"\n" not in outgoing.data.replace(b"\r\n", b"")
    message = message_from_bytes(outgoing.data, policy=policy.default)
    assert message["Subject"] == "Promoção de Natal ☃ para você"
    assert message["From"].addresses[0].display_name == "Loja São João"
    assert message["From"].addresses[0].addr_spec == "news@loja.example"
    assert message["Date"] == "Sun, 22 Nov 2026 12:30:00 +0000"
    assert message["List-Unsubscribe"] == "<https://crm.loja.example/u/abc.def>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    assert plain.get_content().replace("\r\n", "\n") == text
    assert rich.get_content().replace("\r\n", "\n") == html.replace("\r\n", "\n")


def test_a_long_non_ascii_subject_is_folded_into_encoded_words_read_back_whole():
    subject = "Olá, João! " * 12 + "☃ fim"
    outgoing = compose(Rendered(subject=subject, html="<p>x</p>", text="x"),
                       Envelope(sender="news@loja.example", to="joao@example.com",
                                message_id="<c1@loja.example>",
                                unsubscribe_url="https://crm.loja.example/u/abc.def",
                                date=datetime(2026, 11, 22, 12, 30, tzinfo=UTC)))
    head = outgoing.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    folded = head[head.index("Subject: "):head.index("\r\nDate: ")].split("\r\n")
    assert len(folded) == 5 and max(map(len, folded)) == 73  # 163 bytes: 4 × 39 + 7
    assert message_from_bytes(outgoing.data, policy=policy.default)["Subject"] == subject
