#!/usr/bin/env python3
"""bench/newsletter.py - the 100 KB newsletter issue 17 measures.

    bench/newsletter.py DIR [SIZE]

Writes a volley template folder into DIR: message.cfg, body.html (a
table-laid newsletter with inline CSS, most of the message), body.txt
(its text alternative) and logo.png (an inline image, referenced as
cid:logo.png), so that one rendered message is about SIZE bytes
(default 102,400) for the recipients bench/run writes (email,
first_name, last_name, city, plan).  Per-recipient variables appear in
the subject, both bodies (greeting, a dozen article blurbs, the footer)
and the links; a few typographic characters (em dash, curly quotes,
"café") make the HTML and text quoted-printable as real newsletters are.
Everything is deterministic: the same SIZE gives the same files.
"""
import os
import random
import struct
import sys
import zlib

ARTICLE_HTML = (
    '<tr><td style="padding:18px 32px;font-family:Helvetica,Arial,'
    'sans-serif;font-size:15px;line-height:22px;color:#333333;">\n'
    '<h2 style="margin:0 0 8px 0;font-size:19px;color:#1a1a1a;">'
    '{title} \u2014 for {{{{city}}}}</h2>\n'
    '<p style="margin:0 0 12px 0;">{text}</p>\n'
    '<p style="margin:0;"><a href="https://news.example.org/a/{n}?'
    'u={{{{email}}}}&amp;plan={{{{plan}}}}" style="color:#0b6bcb;'
    'text-decoration:underline;">Read the whole story, '
    '{{{{first_name}}}} &#8594;</a></p>\n'
    '</td></tr>\n')
ARTICLE_TEXT = (
    "{title} \u2014 for {{{{city}}}}\n{text_wrapped}\n"
    "Read the whole story: https://news.example.org/a/{n}?u={{{{email}}}}"
    "\n\n")
WORDS = ("the museum garden opens its new wing this weekend with guided "
         "walks for members and a caf\u00e9 on the terrace while the "
         "\u201cspring collection\u201d brings forty works from private "
         "lenders every evening until nine tickets are free for your "
         "plan and the library adds a reading room for quiet work").split()


def png(width, height, rnd):
    """A valid PNG of noise (it compresses poorly, as photos do)."""
    raw = b"".join(b"\x00" + bytes(rnd.getrandbits(8)
                                   for _ in range(width * 3))
                   for _ in range(height))

    def chunk(kind, data):
        c = kind + data
        return (struct.pack(">I", len(data)) + c +
                struct.pack(">I", zlib.crc32(c) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                       0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def paragraph(rnd, nwords):
    return " ".join(rnd.choice(WORDS) for _ in range(nwords)).capitalize() \
        + "."


def wrap(text, width=72):
    lines, cur = [], ""
    for w in text.split():
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    return "\n".join(lines + [cur])


def write_newsletter(directory, size=102400):
    rnd = random.Random(17)
    os.makedirs(directory, exist_ok=True)
    logo = png(48, 40, rnd)          # ~5.8 KB, ~7.9 KB in base64
    with open(os.path.join(directory, "logo.png"), "wb") as f:
        f.write(logo)
    # Of what is left after headers (~1.2 KB) and the logo in base64,
    # about 70% goes to the HTML and 30% to its text version, the way
    # an ESP's template splits; quoted-printable adds a few per cent.
    budget = max(size - 1200 - len(logo) * 4 // 3 - 600, 4000)
    budget = budget * 92 // 100     # quoted-printable grows the text
    html_budget, text_budget = budget * 70 // 100, budget * 30 // 100
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width">\n'
        '<title>Spring news for {{first_name}}</title></head>\n'
        '<body style="margin:0;padding:0;background:#f4f4f4;">\n'
        '<table role="presentation" width="100%" cellpadding="0" '
        'cellspacing="0" style="background:#f4f4f4;"><tr><td '
        'align="center">\n<table role="presentation" width="600" '
        'cellpadding="0" cellspacing="0" style="background:#ffffff;">\n'
        '<tr><td style="padding:24px 32px;"><img src="cid:logo.png" '
        'width="48" height="40" alt="Volley News"></td></tr>\n'
        '<tr><td style="padding:0 32px;font-family:Helvetica,Arial,'
        'sans-serif;font-size:16px;">Hello {{first_name}} '
        '{{last_name}},<br>here is what changed in {{city}} this month '
        'for members on the {{plan}} plan.</td></tr>\n')
    foot = (
        '<tr><td style="padding:24px 32px;font-size:12px;color:#888888;">'
        'You receive this as {{email}} because you joined Volley News. '
        '<a href="https://news.example.org/prefs?u={{email}}">Your '
        'preferences</a>.</td></tr>\n</table>\n</td></tr></table>\n'
        '</body></html>\n')
    text = ("Hello {{first_name}} {{last_name}},\n\nhere is what changed "
            "in {{city}} this month for members on the {{plan}} plan.\n\n")
    text_foot = ("--\nYou receive this as {{email}} because you joined "
                 "Volley News.\nYour preferences: "
                 "https://news.example.org/prefs?u={{email}}\n")
    html, n = head, 0
    while len(html.encode()) + len(foot) < html_budget:
        n += 1
        html += ARTICLE_HTML.format(title=f"Story {n}: "
                                    + paragraph(rnd, 5)[:-1],
                                    text=paragraph(rnd, 60), n=n)
    html += foot
    k = 0
    while len(text.encode()) + len(text_foot) < text_budget:
        k += 1
        text += ARTICLE_TEXT.format(title=f"Story {k}",
                                    text_wrapped=wrap(paragraph(rnd, 70)),
                                    n=k)
    text += text_foot
    with open(os.path.join(directory, "body.html"), "w") as f:
        f.write(html)
    with open(os.path.join(directory, "body.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(directory, "message.cfg"), "w") as f:
        f.write('subject = "Spring news for {{city}}, {{first_name}}";\n'
                'from = "Volley News <news@example.org>";\n'
                'inline = [ "logo.png" ];\n')
    return directory


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    write_newsletter(sys.argv[1],
                     int(sys.argv[2]) if len(sys.argv) == 3 else 102400)
