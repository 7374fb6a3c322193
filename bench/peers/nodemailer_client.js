#!/usr/bin/env node
// nodemailer_client.js - a peer client for volley's benchmarks: Nodemailer
// with its connection pool, as a Node.js bulk sender would use it.
//
//   node nodemailer_client.js --host H --port P --connections C --count N
//       --size BYTES [--starttls --user U --password-env VARNAME
//       [--cafile FILE | --insecure]] [--from ADDR] [--outstanding K]
//
// Transport: pool: true, maxConnections: C, maxMessages: Infinity (the
// default, 100, would close and reopen every connection after 100
// messages).  Nodemailer pipelines MAIL/RCPT/DATA when the server offers
// PIPELINING.  Without --starttls, ignoreTLS: true keeps it on plaintext
// (otherwise it would upgrade on its own whenever STARTTLS is offered);
// with --starttls, requireTLS: true and AUTH PLAIN.
//
// Messages are handed to sendMail() as `raw` (with an explicit envelope):
// the prebuilt message is streamed as it is, which is Nodemailer's fast
// path; `text` would run every message through its MIME composer (header
// encoding, transfer-encoding choice, line folding) - measured here at
// C=8, 20,000 x 4 KB: 840 instead of 575 us of CPU per message, 25-30%
// fewer messages/s - and it writes its own headers (charset=utf-8).
// Recipients are rcpt{i}@example.org, one per message; the body
// (printable ASCII lines of at most 76 characters, CRLF) is built once,
// padded so that the message is BYTES within a few bytes; per message
// only the headers are made.  The Date header is taken once at start, as
// the smtplib peer does.  transporter.close() at the end drops the pooled
// connections without QUIT: that is what Nodemailer's pool does.
//
// Concurrency: --outstanding K sendMail() promises at most (default
// C * 4); 0 hands all N to the pool at once.  The pool queues them fine
// either way, but all at once costs memory and time (a MailMessage and
// its MIME node per queued message): at 50,000 x 4 KB, C=8, 462 MB max
// RSS and 1,400 msg/s, against 97 MB and 1,950 msg/s with K = 32.
//
// Prints exactly one JSON line on stdout at the end:
//   {"client":"nodemailer","messages":N,"ok":k,"errors":e,"seconds":S}
// S: wall time of the send phase, from the first sendMail() (the pool
// connects lazily, so connect, STARTTLS and AUTH are inside it) until the
// last message has its reply.  Exit 0 if every message was accepted, else
// 1; the first few errors go to stderr.
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const nodemailer = require('nodemailer');

const CLIENT = 'nodemailer';
const MAX_ERROR_TEXTS = 5;

function usage(msg) {
    process.stderr.write(`nodemailer_client.js: ${msg}\n` +
        'usage: nodemailer_client.js --host H --port P --connections C --count N --size BYTES\n' +
        '    [--starttls --user U --password-env VARNAME [--cafile FILE | --insecure]]\n' +
        '    [--from ADDR] [--outstanding K]\n');
    process.exit(2);
}

function intArg(values, name, min) {
    const s = values[name];
    if (s === undefined) {
        usage(`--${name} is required`);
    }
    if (!/^\d+$/.test(s) || Number(s) < min) {
        usage(`--${name}: want an integer >= ${min}, got '${s}'`);
    }
    return Number(s);
}

function parse(argv) {
    let values;
    try {
        ({ values } = parseArgs({
            args: argv,
            strict: true,
            options: {
                host: { type: 'string' },
                port: { type: 'string' },
                connections: { type: 'string' },
                count: { type: 'string' },
                size: { type: 'string' },
                starttls: { type: 'boolean', default: false },
                user: { type: 'string' },
                'password-env': { type: 'string' },
                cafile: { type: 'string' },
                insecure: { type: 'boolean', default: false },
                from: { type: 'string', default: 'bench@example.org' },
                outstanding: { type: 'string' }
            }
        }));
    } catch (e) {
        usage(e.message);
    }
    if (values.host === undefined) {
        usage('--host is required');
    }
    const a = {
        host: values.host,
        port: intArg(values, 'port', 1),
        connections: intArg(values, 'connections', 1),
        count: intArg(values, 'count', 0),
        size: intArg(values, 'size', 1),
        starttls: values.starttls,
        user: values.user,
        passwordEnv: values['password-env'],
        cafile: values.cafile,
        insecure: values.insecure,
        from: values.from
    };
    a.outstanding = values.outstanding === undefined ? a.connections * 4 : intArg(values, 'outstanding', 0);
    if ((a.user === undefined) !== (a.passwordEnv === undefined)) {
        usage('--user and --password-env go together');
    }
    if (a.user !== undefined && !a.starttls) {
        usage('--user needs --starttls');
    }
    if (a.passwordEnv !== undefined && process.env[a.passwordEnv] === undefined) {
        usage(`--password-env: $${a.passwordEnv} is not set`);
    }
    if (a.cafile !== undefined && a.insecure) {
        usage('--cafile and --insecure exclude each other');
    }
    return a;
}

function makeHeaders(from, date, stamp, i) {
    return `From: ${from}\r\n` +
        `To: rcpt${i}@example.org\r\n` +
        `Subject: bench ${i}\r\n` +
        `Date: ${date}\r\n` +
        `Message-ID: <bench.${i}.${stamp}@example.org>\r\n` +
        'MIME-Version: 1.0\r\n' +
        'Content-Type: text/plain; charset=us-ascii\r\n' +
        'Content-Transfer-Encoding: 7bit\r\n' +
        '\r\n';
}

// The same body as smtplib_client.py's make_body(): printable ASCII lines
// of at most 76 characters + CRLF, exactly nbytes long, none starting with
// a dot (so nothing is dot-stuffed).
function makeBody(nbytes) {
    let alphabet = '';
    for (let c = 33; c < 127; c++) {
        if (c !== 46) {
            alphabet += String.fromCharCode(c);
        }
    }
    const lines = [];
    let total = 0;
    let k = 0;
    while (total < nbytes) {
        let room = nbytes - total - 2;
        if (room < 1) {
            if (lines.length && lines[lines.length - 1].length + (nbytes - total) <= 78) {
                const last = lines[lines.length - 1];
                lines[lines.length - 1] = last.slice(0, -2) + 'x'.repeat(nbytes - total) + '\r\n';
                total = nbytes;
                break;
            }
            room = 1;
        }
        let n = Math.min(76, room);
        if (room - n > 0 && room - n < 3) {
            n = room - 3;
        }
        let line = '';
        for (let j = 0; j < n; j++) {
            line += alphabet[(k + j) % alphabet.length];
        }
        lines.push(line + '\r\n');
        total += n + 2;
        k++;
    }
    return lines.join('');
}

// RFC 5322 date in local time, as Python's email.utils.formatdate(localtime=True)
function rfc5322Date(d) {
    const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const p2 = n => String(n).padStart(2, '0');
    const off = -d.getTimezoneOffset();
    const sign = off < 0 ? '-' : '+';
    const abs = Math.abs(off);
    return `${days[d.getDay()]}, ${p2(d.getDate())} ${months[d.getMonth()]} ${d.getFullYear()} ` +
        `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ` +
        `${sign}${p2(Math.floor(abs / 60))}${p2(abs % 60)}`;
}

async function main() {
    const a = parse(process.argv.slice(2));
    const options = {
        host: a.host,
        port: a.port,
        secure: false,
        pool: true,
        maxConnections: a.connections,
        maxMessages: Infinity,
        logger: false
    };
    if (a.starttls) {
        options.requireTLS = true;
        options.tls = a.insecure ? { rejectUnauthorized: false } : a.cafile ? { ca: fs.readFileSync(a.cafile) } : {};
        if (a.user !== undefined) {
            options.auth = { user: a.user, pass: process.env[a.passwordEnv] };
            options.authMethod = 'PLAIN';
        }
    } else {
        options.ignoreTLS = true;
    }
    const transporter = nodemailer.createTransport(options);

    const date = rfc5322Date(new Date());
    const stamp = `${process.pid}.${Math.floor(Date.now() / 1000)}`;
    const headersOf = i => makeHeaders(a.from, date, stamp, i);
    const body = makeBody(Math.max(a.size - headersOf(Math.floor(a.count / 2)).length, 3));

    let ok = 0;
    let errors = 0;
    const texts = [];
    const sendOne = i => {
        const to = `rcpt${i}@example.org`;
        return transporter
            .sendMail({
                envelope: { from: a.from, to: [to] },
                raw: headersOf(i) + body
            })
            .then(info => {
                // one recipient: refusing it fails the message (EENVELOPE)
                if (info.rejected && info.rejected.length) {
                    throw new Error(`rejected: ${JSON.stringify(info.rejected)}`);
                }
                ok++;
            })
            .catch(err => {
                errors++;
                if (texts.length < MAX_ERROR_TEXTS) {
                    texts.push(`${to}: ${err.code || err.name}: ${err.message}`);
                }
            });
    };

    const t0 = process.hrtime.bigint();
    if (a.outstanding === 0 || a.outstanding >= a.count) {
        const all = new Array(a.count);
        for (let i = 0; i < a.count; i++) {
            all[i] = sendOne(i);
        }
        await Promise.all(all);
    } else {
        // K lanes, each with one sendMail() outstanding: at most K queued
        let next = 0;
        const lane = async () => {
            while (next < a.count) {
                await sendOne(next++);
            }
        };
        await Promise.all(Array.from({ length: a.outstanding }, lane));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    transporter.close();

    for (const t of texts) {
        process.stderr.write(`${CLIENT}: error: ${t}\n`);
    }
    process.stdout.write(JSON.stringify({
        client: CLIENT,
        messages: a.count,
        ok,
        errors,
        seconds: Math.round(seconds * 1000) / 1000
    }) + '\n');
    process.exitCode = ok === a.count ? 0 : 1;
}

main().catch(err => {
    process.stderr.write(`${CLIENT}: ${err.stack || err}\n`);
    process.exit(1);
});
