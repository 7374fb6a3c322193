#!/usr/bin/env python3
"""hostile - a scripted SMTP server that misbehaves on purpose, for the
fault-injection suite (tests/faults/run.py).

    hostile.py --port-file F --log L [--script S] [--struck F]
               [--no-enhanced] [--no-pipelining] [--listen 127.0.0.1:0]

It speaks enough SMTP for a pipelining client (EHLO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT; no TLS, no AUTH, no CHUNKING) and logs, one JSON line
each, every message it accepted: {"conn", "msg", "from", "rcpts",
"message_id"}; with --struck, one line per rule that fired ({"conn",
"on", "msg"}). A message counts as accepted once its final dot was read
and the server decided to take it, whether or not the client ever sees
the reply: that is what a relay that answers late or drops the
connection after the dot does to a sender.

The script is a JSON list of rules; the first rule that matches a
command decides what happens to it:

  {"on": "greeting|ehlo|mail|rcpt|data|dot|rset|quit",
   "conn": N, "msg": N, "times": N,      (optional conditions: the Nth
                                           connection, the Nth
                                           transaction on it; a rule
                                           with "times" applies that
                                           often, then no more)
   "delay_ms": N,                          wait before the reply
   "reply": "451 4.3.0 later",             this reply instead
   "early": "250 2.0.0 too soon",          data only: this line right
                                           behind the 354, before the
                                           client could send the body
   "swap": true,                           dot only: answer the next
                                           command pipelined behind the
                                           dot first, then the dot
   "drop": true,                           close instead of replying
                                           (dot: after accepting it)
   "silent": true,                         never reply again
   "raw": "text",                          send these bytes as they are
                                           (\\r, \\n and control bytes
                                           allowed) instead of a reply,
                                           as UTF-8
   "latin1": "text",                       the same, one byte for each
                                           character (\\u009b: byte 9B)
   "split": N,                             the reply N bytes at a time
   "take": false}                          dot: refuse silently (the
                                           message is not logged)

Replies always carry an enhanced code unless --no-enhanced, which also
leaves ENHANCEDSTATUSCODES out of EHLO (and makes replies like a server
that never heard of RFC 2034).
"""
import argparse
import json
import os
import re
import socket
import sys
import threading
import time

lock = threading.Lock()
conn_counter = [0]


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--struck", help="where each rule that fired is logged")
    ap.add_argument("--script")
    ap.add_argument("--no-enhanced", action="store_true")
    ap.add_argument("--no-pipelining", action="store_true")
    return ap.parse_args()


class Rules:
    def __init__(self, path, struck):
        self.rules = json.load(open(path)) if path else []
        self.used = [0] * len(self.rules)
        self.struck = open(struck, "a") if struck else None

    def match(self, on, conn, msg):
        with lock:
            for i, r in enumerate(self.rules):
                if r.get("on") != on:
                    continue
                if "conn" in r and r["conn"] != conn:
                    continue
                if "msg" in r and r["msg"] != msg:
                    continue
                if "times" in r and self.used[i] >= r["times"]:
                    continue
                self.used[i] += 1
                if self.struck is not None:
                    self.struck.write(json.dumps({"conn": conn, "on": on,
                                                  "msg": msg}) + "\n")
                    self.struck.flush()
                return r
        return {}


class Conn:
    def __init__(self, sock, n, args, rules, log):
        self.s = sock
        self.n = n
        self.args = args
        self.rules = rules
        self.log = log
        self.buf = b""
        self.msg = 0
        self.sender = None
        self.rcpts = []
        self.silent = False
        self.pending = []      # replies held back by a "swap"

    # -- input ------------------------------------------------------------
    def fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def body(self):
        while True:
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                data, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return data
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            self.fill()

    # -- output -----------------------------------------------------------
    def enh(self, code, enh):
        return "" if self.args.no_enhanced else enh + " "

    def send(self, text, rule):
        if self.silent:
            return
        data = text.encode() if isinstance(text, str) else text
        step = rule.get("split")
        if step:
            for i in range(0, len(data), step):
                self.s.sendall(data[i:i + step])
                time.sleep(0.005)
        else:
            self.s.sendall(data)

    def send_raw(self, rule):
        """the rule's raw bytes instead of a reply, if it has some"""
        if "raw" in rule:
            self.send(rule["raw"], rule)
        elif "latin1" in rule:
            self.send(rule["latin1"].encode("latin-1"), rule)
        else:
            return False
        return True

    def answer(self, on, normal, extra=None):
        """reply to one command by the rules; False: stop serving"""
        rule = self.rules.match(on, self.n, self.msg)
        if rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if rule.get("silent"):
            self.silent = True
            return True
        if rule.get("drop"):
            return False
        if self.send_raw(rule):
            return True
        text = rule.get("reply", normal)
        if extra:
            text = extra(rule, text)
        self.send(text + "\r\n", rule)
        return True

    # -- the conversation -------------------------------------------------
    def serve(self):
        if not self.answer("greeting", "220 hostile.test ESMTP"):
            return
        while True:
            line = self.line()
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                caps = ["hostile.test"]
                if not self.args.no_pipelining:
                    caps.append("PIPELINING")
                if not self.args.no_enhanced:
                    caps.append("ENHANCEDSTATUSCODES")
                caps += ["8BITMIME", "SIZE 100000000"]
                text = "\r\n".join("250-" + c for c in caps[:-1]) + \
                    "\r\n250 " + caps[-1]
                if not self.answer("ehlo", text):
                    return
            elif verb == "MAIL":
                self.msg += 1
                m = re.search(r"<([^>]*)>", line)
                self.sender = m.group(1) if m else ""
                self.rcpts = []
                if not self.answer("mail", "250 " + self.enh(250, "2.1.0")
                                   + "sender ok"):
                    return
            elif verb == "RCPT":
                m = re.search(r"<([^>]*)>", line)
                rule_rcpt = m.group(1) if m else ""
                self.rcpts.append(rule_rcpt)
                if not self.answer("rcpt", "250 " + self.enh(250, "2.1.5")
                                   + "recipient ok"):
                    return
            elif verb == "DATA":
                rule = self.rules.match("data", self.n, self.msg)
                if rule.get("delay_ms"):
                    time.sleep(rule["delay_ms"] / 1000.0)
                if rule.get("drop"):
                    return
                if "reply" in rule:
                    self.send(rule["reply"] + "\r\n", rule)
                    continue
                go = "354 go ahead\r\n"
                if "early" in rule:
                    go += rule["early"] + "\r\n"
                self.send(go, rule)
                body = self.body()
                if not self.dot(body):
                    return
            elif verb == "RSET":
                self.rcpts = []
                if not self.answer("rset", "250 " + self.enh(250, "2.0.0")
                                   + "ok"):
                    return
            elif verb == "NOOP":
                self.send("250 " + self.enh(250, "2.0.0") + "ok\r\n", {})
            elif verb == "QUIT":
                self.answer("quit", "221 " + self.enh(221, "2.0.0") +
                            "bye")
                return
            else:
                self.send("500 " + self.enh(500, "5.5.2") +
                          "unknown command\r\n", {})

    def dot(self, body):
        rule = self.rules.match("dot", self.n, self.msg)
        take = rule.get("take", True)
        if take:
            mid = re.search(rb"(?im)^Message-ID:\s*(<[^>\r\n]*>)", body)
            rec = {"conn": self.n, "msg": self.msg, "from": self.sender,
                   "rcpts": self.rcpts,
                   "message_id": mid.group(1).decode() if mid else None}
            with lock:
                self.log.write(json.dumps(rec) + "\n")
                self.log.flush()
        if rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if rule.get("silent"):
            self.silent = True
            return True
        if rule.get("drop"):
            return False
        text = rule.get("reply", "250 " + self.enh(250, "2.0.0") +
                        "queued as H%d.%d" % (self.n, self.msg))
        if self.send_raw(rule):
            return True
        if rule.get("swap"):
            # answer whatever the client pipelined behind the dot first
            nxt = self.line()
            verb = nxt.split(" ", 1)[0].upper()
            if verb == "MAIL":
                self.msg += 1
                m = re.search(r"<([^>]*)>", nxt)
                self.sender = m.group(1) if m else ""
                self.rcpts = []
                self.send("250 " + self.enh(250, "2.1.0") + "sender ok\r\n",
                          {})
            else:
                self.buf = (nxt + "\r\n").encode() + self.buf
        self.send(text + "\r\n", rule)
        return True


def main():
    args = parse_args()
    rules = Rules(args.script, args.struck)
    log = open(args.log, "a")
    host, port = args.listen.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(64)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(args.port_file + ".tmp", args.port_file)

    def run(sock, n):
        c = Conn(sock, n, args, rules, log)
        try:
            c.serve()
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    while True:
        sock, _ = srv.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with lock:
            conn_counter[0] += 1
            n = conn_counter[0]
        threading.Thread(target=run, args=(sock, n), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
