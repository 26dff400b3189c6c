// SPDX-License-Identifier: GPL-2.0-or-later
//
// NAME
//	peer.js 1
// SUMMARY
//	the peer of bench_sanitize: mailparser + html-to-text on the same corpus
// SYNOPSIS
//	node peer.js LIST-OR-DIR...
//	node peer.js -s FILE
// DESCRIPTION
//	Corpus mode takes files (one message each), directories (their
//	*.eml files in name order) and list files (a name ending in
//	".list": one path a line), and for each message, in that order:
//	reads it whole into a Buffer (not timed: that is how simpleParser
//	is normally given a message), then, timed: simpleParser() (with
//	sha256 attachment checksums, no text-to-HTML, no image links),
//	html-to-text's convert() on the HTML body when there is one, and
//	a rebuilt text output, JSON.stringify() of the header fields, the
//	text and the attachment metadata, written to /dev/null with one
//	writeSync(). The category of a file is the part of its name
//	between the first '-' and ".eml", as in bench_util.c.
//
//	Stream mode (-s) gives simpleParser a read stream of FILE in
//	64 KiB chunks (the read time is timed too, as in bench_sanitize).
//
//	Output: the lines of bench_util.c ("RESULT impl=peer ..." and one
//	"CATEGORY" per category); decoded= is the size of the output.
//	Peak RSS is process.resourceUsage().maxRSS (KiB, ru_maxrss).
// DIAGNOSTICS
//	Exit 1 if any message fails to parse (each is reported on stderr),
//	2 on usage.
'use strict';

const fs = require('fs');
const path = require('path');
const { simpleParser } = require('mailparser');
const { convert } = require('html-to-text');

const CHUNK = 64 * 1024;

const parserOptions = {
    checksumAlgo: 'sha256',
    skipTextToHtml: true,
    skipImageLinks: true,
    skipHtmlToText: true, // done below with convert(), every HTML body
};

const convertOptions = { wordwrap: 76 };

function usage() {
    process.stderr.write('usage: node peer.js LIST-OR-DIR...\n       node peer.js -s FILE\n');
    process.exit(2);
}

function categoryOf(p) {
    const base = path.basename(p);
    const dash = base.indexOf('-');
    const dot = base.lastIndexOf('.');
    if (dash < 0 || dot <= dash + 1)
        return 'other';
    return base.slice(dash + 1, dot);
}

function listFiles(args) {
    const files = [];
    for (const a of args) {
        const st = fs.statSync(a);
        if (st.isDirectory()) {
            for (const n of fs.readdirSync(a).filter((x) => x.endsWith('.eml')).sort())
                files.push(path.join(a, n));
        } else if (a.endsWith('.list')) {
            for (const line of fs.readFileSync(a, 'utf8').split('\n'))
                if (line !== '')
                    files.push(line);
        } else {
            files.push(a);
        }
    }
    return files;
}

function cpuNow() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

function wallNow() {
    return Number(process.hrtime.bigint()) / 1e9;
}

// The rebuilt output of one parsed message; returns its byte count.
function rebuild(mail, sink) {
    const text = mail.html ? convert(mail.html, convertOptions) : mail.text || '';
    const out = JSON.stringify({
        from: mail.from ? mail.from.text : null,
        to: mail.to ? (Array.isArray(mail.to) ? mail.to.map((a) => a.text) : mail.to.text) : null,
        subject: mail.subject || null,
        date: mail.date ? mail.date.toISOString() : null,
        messageId: mail.messageId || null,
        text,
        attachments: mail.attachments.map((a) => ({
            filename: a.filename || null,
            contentType: a.contentType,
            size: a.size,
            checksum: a.checksum,
        })),
    });
    const buf = Buffer.from(out, 'utf8');
    fs.writeSync(sink, buf);
    return { out: buf.length, leaves: mail.attachments.length + (mail.html || mail.text ? 1 : 0) };
}

function line(kind, fields) {
    return kind + ' ' + Object.entries(fields).map(([k, v]) => k + '=' + v).join(' ') + '\n';
}

function tallyFields(t) {
    return {
        files: t.files,
        bytes: t.bytes,
        decoded: t.decoded,
        leaves: t.leaves,
        seconds: t.seconds.toFixed(6),
        mbps: (t.seconds > 0 ? t.bytes / t.seconds / 1e6 : 0).toFixed(2),
        cpu_seconds: t.cpu.toFixed(6),
        cpu_mbps: (t.cpu > 0 ? t.bytes / t.cpu / 1e6 : 0).toFixed(2),
    };
}

async function runCorpus(args) {
    const files = listFiles(args);
    if (files.length === 0)
        usage();
    const sink = fs.openSync('/dev/null', 'w');
    const cats = new Map();
    const all = { files: 0, bytes: 0, decoded: 0, leaves: 0, seconds: 0, cpu: 0 };
    const rssStart = process.resourceUsage().maxRSS;
    let failures = 0;

    for (const f of files) {
        const name = categoryOf(f);
        if (!cats.has(name))
            cats.set(name, { files: 0, bytes: 0, decoded: 0, leaves: 0, seconds: 0, cpu: 0 });
        const t = cats.get(name);
        const data = fs.readFileSync(f);
        const c0 = cpuNow();
        const t0 = wallNow();
        let r = { out: 0, leaves: 0 };
        try {
            const mail = await simpleParser(data, parserOptions);
            r = rebuild(mail, sink);
        } catch (e) {
            process.stderr.write(`peer: ${f}: ${e.message}\n`);
            failures++;
        }
        const t1 = wallNow();
        const c1 = cpuNow();
        t.files++;
        t.bytes += data.length;
        t.decoded += r.out;
        t.leaves += r.leaves;
        t.seconds += t1 - t0;
        t.cpu += c1 - c0;
    }
    fs.closeSync(sink);
    for (const t of cats.values())
        for (const k of Object.keys(all))
            all[k] += t[k];
    let out = line('RESULT', {
        impl: 'peer',
        mode: 'corpus',
        ...tallyFields(all),
        failures,
        rss_start_kib: rssStart,
        rss_peak_kib: process.resourceUsage().maxRSS,
    });
    for (const [name, t] of cats)
        out += line('CATEGORY', { impl: 'peer', name, ...tallyFields(t) });
    process.stdout.write(out);
    return failures ? 1 : 0;
}

async function runStream(file) {
    const sink = fs.openSync('/dev/null', 'w');
    const rssStart = process.resourceUsage().maxRSS;
    const bytes = fs.statSync(file).size;
    let failures = 0;
    let r = { out: 0, leaves: 0 };
    const c0 = cpuNow();
    const t0 = wallNow();
    try {
        const mail = await simpleParser(fs.createReadStream(file, { highWaterMark: CHUNK }),
            parserOptions);
        r = rebuild(mail, sink);
    } catch (e) {
        process.stderr.write(`peer: ${file}: ${e.message}\n`);
        failures++;
    }
    const t1 = wallNow();
    const c1 = cpuNow();
    fs.closeSync(sink);
    const t = { files: 1, bytes, decoded: r.out, leaves: r.leaves, seconds: t1 - t0, cpu: c1 - c0 };
    process.stdout.write(line('RESULT', {
        impl: 'peer',
        mode: 'stream',
        ...tallyFields(t),
        failures,
        rss_start_kib: rssStart,
        rss_peak_kib: process.resourceUsage().maxRSS,
    }));
    return failures ? 1 : 0;
}

async function main(argv) {
    if (argv[0] === '-s') {
        if (argv.length !== 2)
            usage();
        return runStream(argv[1]);
    }
    if (argv.length === 0 || argv[0].startsWith('-'))
        usage();
    return runCorpus(argv);
}

main(process.argv.slice(2)).then(
    (rc) => process.exit(rc),
    (e) => {
        process.stderr.write(`peer: ${e.stack || e}\n`);
        process.exit(1);
    });
