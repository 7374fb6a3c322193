#!/usr/bin/env python3
"""check_eml.py - read volley's .eml output with an independent MIME parser.

Usage: check_eml.py EXPECT.json FILE.eml...

Each message is parsed with Python's email package (email.policy.default)
and must report no defects.  The raw bytes must have CRLF line ends only,
no line over 998 bytes, and headers within 78 columns where they could be
folded.  EXPECT.json says, per recipient address, what the decoded message
must hold:

  {"by_to": {"ada@example.org": {
      "subject": "...",                 exact decoded Subject
      "from": "...",                    exact decoded From
      "text_contains": ["Hello Ada,"],  substrings of the text/plain part
      "html_contains": ["..."],         substrings of the text/html part
      "structure": "multipart/mixed(...)",
      "attachments": {"spring-guide.pdf": "path/to/file"},
      "inline": {"logo.png": "path/to/file"}}},
   "headers_present": ["List-Unsubscribe", ...]}

Prints one line per failure and "N passed, N failed" at the end.
"""
import email
import email.policy
import json
import sys


def structure(part):
    """multipart/mixed(multipart/alternative(text/plain,...),...)"""
    if part.is_multipart():
        inner = ",".join(structure(p) for p in part.iter_parts())
        return "%s(%s)" % (part.get_content_type(), inner)
    return part.get_content_type()


# An SMTPUTF8 address goes in To as UTF-8 (RFC 6532), which Python's
# RFC 5322 parser reports as these two defects; nothing else may appear.
UTF8_ADDRESS_DEFECTS = ("NonASCIILocalPartDefect", "UndecodableBytesDefect")


def all_defects(msg, smtputf8):
    found = []
    for part in msg.walk():
        found.extend("%s: %r" % (part.get_content_type(), d)
                     for d in part.defects)
        for name, value in part.items():
            for d in getattr(value, "defects", ()):
                if smtputf8 and name == "To" and \
                        type(d).__name__ in UTF8_ADDRESS_DEFECTS:
                    continue
                found.append("%s header: %r" % (name, d))
    return found


def content(part):
    """A text part's decoded content with line ends as "\\n"."""
    return part.get_content().replace("\r\n", "\n")


def raw_problems(data):
    problems = []
    head, _, _ = data.partition(b"\r\n\r\n")
    for i, line in enumerate(data.split(b"\r\n")):
        if b"\n" in line or b"\r" in line:
            problems.append("line %d has a bare CR or LF" % (i + 1))
        if len(line) > 998:
            problems.append("line %d is %d bytes long" % (i + 1, len(line)))
    for i, line in enumerate(head.split(b"\r\n")):
        # Only a header with no place to fold may pass 78 columns.
        if len(line) > 78 and b" " in line.strip()[line.find(b":") + 2:]:
            problems.append("header line %d is %d columns: %r"
                            % (i + 1, len(line), line[:90]))
    return problems


def main():
    expect = json.load(open(sys.argv[1], encoding="utf-8"))
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL: %s" % what)

    for path in sys.argv[2:]:
        data = open(path, "rb").read()
        for problem in raw_problems(data):
            check(False, "%s: %s" % (path, problem))
        msg = email.message_from_bytes(data, policy=email.policy.default)
        head = data.partition(b"\r\n\r\n")[0]
        to_line = [l for l in head.split(b"\r\n") if l.startswith(b"To:")]
        smtputf8 = bool(to_line) and max(to_line[0]) >= 0x80
        defects = all_defects(msg, smtputf8)
        check(not defects, "%s: defects %s" % (path, defects))
        for name in expect.get("headers_present", []):
            check(msg[name] is not None, "%s: no %s header" % (path, name))
        for name in ("Date", "Message-ID", "From", "To", "Subject",
                     "MIME-Version"):
            check(len(msg.get_all(name) or []) == 1,
                  "%s: %s must appear once" % (path, name))
        to = to_line[0][3:].strip().decode("utf-8") if to_line else ""
        want = expect["by_to"].get(to)
        if want is None:
            continue
        if "subject" in want:
            check(str(msg["Subject"]) == want["subject"],
                  "%s: Subject %r != %r" % (path, str(msg["Subject"]),
                                            want["subject"]))
        if "from" in want:
            check(str(msg["From"]) == want["from"],
                  "%s: From %r != %r" % (path, str(msg["From"]),
                                         want["from"]))
        if "structure" in want:
            check(structure(msg) == want["structure"],
                  "%s: structure %s != %s" % (path, structure(msg),
                                              want["structure"]))
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        for s in want.get("text_contains", []):
            check(text is not None and s in content(text),
                  "%s: text part lacks %r" % (path, s))
        for s in want.get("html_contains", []):
            check(html is not None and s in content(html),
                  "%s: html part lacks %r" % (path, s))
        for s in want.get("text_equals", []):
            check(text is not None and content(text) == s,
                  "%s: text part %r != %r" % (path, text and
                                              content(text), s))
        parts = {p.get_filename(): p for p in msg.walk()
                 if p.get_filename()}
        for name, src in list(want.get("attachments", {}).items()) + \
                list(want.get("inline", {}).items()):
            part = parts.get(name)
            check(part is not None and
                  part.get_content() == open(src, "rb").read(),
                  "%s: %s does not decode to %s" % (path, name, src))
        for name in want.get("inline", {}):
            part = parts.get(name)
            check(part is not None and part["Content-ID"] == "<%s>" % name,
                  "%s: %s has no Content-ID <%s>" % (path, name, name))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
