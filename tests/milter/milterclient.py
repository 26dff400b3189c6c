# SPDX-License-Identifier: GPL-2.0-or-later
"""milterclient - the MTA side of the Sendmail milter protocol, version 6.

Standard library only.  Enough of an MTA to drive a libmilter filter the
way Postfix 3.7 does (milter_protocol = 6), and to apply what the filter
asks for at the end of a message to a copy of that message, so a test can
look at what the MTA would deliver.

    c = MilterClient('127.0.0.1', port)        # connect + OPTNEG
    r = c.send_message(Envelope('a@b', ['c@d']), message_bytes, chunk=65535)
    r.final.cmd       # b'c' (continue), b'y' (reply code), ...
    r.apply()         # the message as the MTA would deliver it
    c.quit()

The wire format (sendmail libmilter, mfdef.h): every packet is a 32-bit
big-endian length, then a one-byte command, then length - 1 bytes of data.
Strings are NUL-terminated.  The MTA opens with SMFIC_OPTNEG (version,
actions it allows, protocol steps it can leave out or not wait a reply
for); the filter answers with the subset it wants.  From then on the MTA
sends a command and, unless the filter said it would not answer that kind
of command (SMFIP_NR_*), reads exactly one reply; at the end of the message
(SMFIC_BODYEOB) the filter first sends any number of modification requests
and then one final reply.  SMFIC_ABORT, SMFIC_MACRO and SMFIC_QUIT are
never answered.
"""

import select
import socket
import struct

# protocol version and limits
PROT_VERSION = 6
CHUNK_SIZE = 65535  # largest body chunk (MILTER_CHUNK_SIZE)

# commands, MTA -> filter
SMFIC_ABORT = b'A'
SMFIC_BODY = b'B'
SMFIC_CONNECT = b'C'
SMFIC_MACRO = b'D'
SMFIC_BODYEOB = b'E'
SMFIC_HELO = b'H'
SMFIC_QUIT_NC = b'K'
SMFIC_HEADER = b'L'
SMFIC_MAIL = b'M'
SMFIC_EOH = b'N'
SMFIC_OPTNEG = b'O'
SMFIC_QUIT = b'Q'
SMFIC_RCPT = b'R'
SMFIC_DATA = b'T'
SMFIC_UNKNOWN = b'U'

# replies, filter -> MTA
SMFIR_ADDRCPT = b'+'
SMFIR_DELRCPT = b'-'
SMFIR_ADDRCPT_PAR = b'2'
SMFIR_SHUTDOWN = b'4'
SMFIR_ACCEPT = b'a'
SMFIR_REPLBODY = b'b'
SMFIR_CONTINUE = b'c'
SMFIR_DISCARD = b'd'
SMFIR_CHGFROM = b'e'
SMFIR_CONN_FAIL = b'f'
SMFIR_ADDHEADER = b'h'
SMFIR_INSHEADER = b'i'
SMFIR_SETSYMLIST = b'l'
SMFIR_CHGHEADER = b'm'
SMFIR_PROGRESS = b'p'
SMFIR_QUARANTINE = b'q'
SMFIR_REJECT = b'r'
SMFIR_SKIP = b's'
SMFIR_TEMPFAIL = b't'
SMFIR_REPLYCODE = b'y'

# replies that end a command (everything else at EOM is a modification)
FINAL_REPLIES = frozenset([SMFIR_ACCEPT, SMFIR_CONTINUE, SMFIR_DISCARD, SMFIR_REJECT,
                           SMFIR_TEMPFAIL, SMFIR_REPLYCODE, SMFIR_SKIP, SMFIR_SHUTDOWN,
                           SMFIR_CONN_FAIL])
REPLY_NAMES = {
    SMFIR_ADDRCPT: 'ADDRCPT', SMFIR_DELRCPT: 'DELRCPT', SMFIR_ADDRCPT_PAR: 'ADDRCPT_PAR',
    SMFIR_SHUTDOWN: 'SHUTDOWN', SMFIR_ACCEPT: 'ACCEPT', SMFIR_REPLBODY: 'REPLBODY',
    SMFIR_CONTINUE: 'CONTINUE', SMFIR_DISCARD: 'DISCARD', SMFIR_CHGFROM: 'CHGFROM',
    SMFIR_CONN_FAIL: 'CONN_FAIL', SMFIR_ADDHEADER: 'ADDHEADER', SMFIR_INSHEADER: 'INSHEADER',
    SMFIR_SETSYMLIST: 'SETSYMLIST', SMFIR_CHGHEADER: 'CHGHEADER', SMFIR_PROGRESS: 'PROGRESS',
    SMFIR_QUARANTINE: 'QUARANTINE', SMFIR_REJECT: 'REJECT', SMFIR_SKIP: 'SKIP',
    SMFIR_TEMPFAIL: 'TEMPFAIL', SMFIR_REPLYCODE: 'REPLYCODE',
}

# actions the filter may take (SMFIF_*)
SMFIF_ADDHDRS = 0x001
SMFIF_CHGBODY = 0x002
SMFIF_ADDRCPT = 0x004
SMFIF_DELRCPT = 0x008
SMFIF_CHGHDRS = 0x010
SMFIF_QUARANTINE = 0x020
SMFIF_CHGFROM = 0x040
SMFIF_ADDRCPT_PAR = 0x080
SMFIF_SETSYMLIST = 0x100
SMFIF_ALL = 0x1FF

# protocol steps (SMFIP_*)
SMFIP_NOCONNECT = 0x000001
SMFIP_NOHELO = 0x000002
SMFIP_NOMAIL = 0x000004
SMFIP_NORCPT = 0x000008
SMFIP_NOBODY = 0x000010
SMFIP_NOHDRS = 0x000020
SMFIP_NOEOH = 0x000040
SMFIP_NR_HDR = 0x000080
SMFIP_NOUNKNOWN = 0x000100
SMFIP_NODATA = 0x000200
SMFIP_SKIP = 0x000400
SMFIP_RCPT_REJ = 0x000800
SMFIP_NR_CONN = 0x001000
SMFIP_NR_HELO = 0x002000
SMFIP_NR_MAIL = 0x004000
SMFIP_NR_RCPT = 0x008000
SMFIP_NR_DATA = 0x010000
SMFIP_NR_UNKN = 0x020000
SMFIP_NR_EOH = 0x040000
SMFIP_NR_BODY = 0x080000
SMFIP_HDR_LEADSPC = 0x100000

# what Postfix 3.7 offers with milter_protocol = 6: every step of
# version 6 may be left out or go without a reply, and header values
# may keep their leading space (all 21 defined bits)
POSTFIX_V6_PROTOCOL = 0x1FFFFF

PROTOCOL_NAMES = [
    (SMFIP_NOCONNECT, 'NOCONNECT'), (SMFIP_NOHELO, 'NOHELO'), (SMFIP_NOMAIL, 'NOMAIL'),
    (SMFIP_NORCPT, 'NORCPT'), (SMFIP_NOBODY, 'NOBODY'), (SMFIP_NOHDRS, 'NOHDRS'),
    (SMFIP_NOEOH, 'NOEOH'), (SMFIP_NR_HDR, 'NR_HDR'), (SMFIP_NOUNKNOWN, 'NOUNKNOWN'),
    (SMFIP_NODATA, 'NODATA'), (SMFIP_SKIP, 'SKIP'), (SMFIP_RCPT_REJ, 'RCPT_REJ'),
    (SMFIP_NR_CONN, 'NR_CONN'), (SMFIP_NR_HELO, 'NR_HELO'), (SMFIP_NR_MAIL, 'NR_MAIL'),
    (SMFIP_NR_RCPT, 'NR_RCPT'), (SMFIP_NR_DATA, 'NR_DATA'), (SMFIP_NR_UNKN, 'NR_UNKN'),
    (SMFIP_NR_EOH, 'NR_EOH'), (SMFIP_NR_BODY, 'NR_BODY'), (SMFIP_HDR_LEADSPC, 'HDR_LEADSPC'),
]


def protocol_names(mask):
    """'NOCONNECT|NOHELO|...' for a protocol mask (unknown bits in hex)."""
    names = [n for bit, n in PROTOCOL_NAMES if mask & bit]
    rest = mask & ~POSTFIX_V6_PROTOCOL
    if rest:
        names.append('0x%x' % rest)
    return '|'.join(names) if names else '0'


class MilterError(Exception):
    """The filter broke the protocol, closed the connection or timed out."""


class Reply:
    """One packet from the filter: command byte and data."""

    def __init__(self, cmd, data):
        self.cmd = cmd
        self.data = data

    @property
    def name(self):
        return REPLY_NAMES.get(self.cmd, repr(self.cmd))

    @property
    def text(self):
        """The SMTP reply of a REPLYCODE ('550 5.7.1 ...'), else ''."""
        if self.cmd != SMFIR_REPLYCODE:
            return ''
        return self.data.rstrip(b'\0').decode('utf-8', 'replace')

    def __repr__(self):
        d = self.data if len(self.data) <= 60 else self.data[:60] + b'...'
        return '<%s %r>' % (self.name, d)


def _cstrings(data, n, what):
    """Splits data into n NUL-terminated strings (all of data)."""
    parts = data.split(b'\0')
    if len(parts) != n + 1 or parts[-1] != b'':
        raise MilterError('%s: expected %d NUL-terminated strings, got %r' % (what, n, data[:200]))
    return parts[:n]


class Modification:
    """One modification request at the end of a message.

    kind: 'add' (ADDHEADER), 'change' (CHGHEADER; value b'' deletes),
    'insert' (INSHEADER), 'body' (one REPLBODY chunk), 'addrcpt',
    'delrcpt', 'chgfrom', 'quarantine'.
    """

    def __init__(self, kind, name=None, value=None, index=None, data=None):
        self.kind = kind
        self.name = name
        self.value = value
        self.index = index
        self.data = data

    def __repr__(self):
        if self.kind == 'body':
            return '<body %d bytes>' % len(self.data)
        return '<%s %r[%s] %r>' % (self.kind, self.name, self.index, self.value)


def parse_modification(r):
    """A Modification from an EOM reply packet (not a final reply)."""
    if r.cmd == SMFIR_ADDHEADER:
        name, value = _cstrings(r.data, 2, 'ADDHEADER')
        return Modification('add', name, value)
    if r.cmd in (SMFIR_CHGHEADER, SMFIR_INSHEADER):
        if len(r.data) < 4:
            raise MilterError('%s too short: %r' % (r.name, r.data))
        index = struct.unpack('>I', r.data[:4])[0]
        name, value = _cstrings(r.data[4:], 2, r.name)
        return Modification('change' if r.cmd == SMFIR_CHGHEADER else 'insert', name, value, index)
    if r.cmd == SMFIR_REPLBODY:
        return Modification('body', data=r.data)
    if r.cmd == SMFIR_ADDRCPT:
        return Modification('addrcpt', value=_cstrings(r.data, 1, 'ADDRCPT')[0])
    if r.cmd == SMFIR_ADDRCPT_PAR:
        parts = r.data.split(b'\0')
        return Modification('addrcpt', value=parts[0], data=b'\0'.join(parts[1:]))
    if r.cmd == SMFIR_DELRCPT:
        return Modification('delrcpt', value=_cstrings(r.data, 1, 'DELRCPT')[0])
    if r.cmd == SMFIR_CHGFROM:
        parts = r.data.split(b'\0')
        return Modification('chgfrom', value=parts[0], data=b'\0'.join(parts[1:]))
    if r.cmd == SMFIR_QUARANTINE:
        return Modification('quarantine', value=r.data.rstrip(b'\0'))
    raise MilterError('unexpected reply at end of message: %r' % (r,))


def split_message(raw):
    """Message bytes -> (fields, body) as an MTA hands them to a filter.

    fields: list of (name, value) bytes; value is everything after the
    colon (leading space kept), continuation lines joined with LF (the
    way Postfix stores them).  body: the bytes after the empty line,
    every line end made CRLF (SMTP DATA).  A line that is neither a field
    nor a continuation ends the header (the MTA would treat it as body).
    """
    lines = raw.replace(b'\r\n', b'\n').split(b'\n')
    fields = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line == b'':
            i += 1
            break
        if line[:1] in (b' ', b'\t') and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b'\n' + line)
            i += 1
            continue
        colon = line.find(b':')
        if colon <= 0 or any(c <= 32 or c >= 127 for c in line[:colon]):
            break
        fields.append((line[:colon], line[colon + 1:]))
        i += 1
    body = b'\r\n'.join(lines[i:])
    return fields, body


def wire_bytes(fields, body, leadspc=True):
    """What a filter that rebuilds the message from the protocol sees:
    "Name:value" CRLF per field (value inner LF -> CRLF), CRLF, body."""
    out = []
    for name, value in fields:
        v = value if leadspc else b' ' + value.lstrip(b' ')
        out.append(name + b':' + v.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n') + b'\r\n')
    out.append(b'\r\n')
    return b''.join(out) + body


class Envelope:
    """MAIL FROM and RCPT TO, with the queue id the MTA gave the message."""

    def __init__(self, sender, recipients, queue_id='4AB12C3D4E'):
        self.sender = sender
        self.recipients = list(recipients)
        self.queue_id = queue_id


class Result:
    """Everything the filter said about one message."""

    def __init__(self, fields, body, leadspc):
        self.fields = list(fields)  # as sent
        self.body = body            # as sent (CRLF)
        self.leadspc = leadspc
        self.steps = []             # (command, Reply) of the answered commands
        self.mods = []              # Modification, in order
        self.final = None           # the final Reply at EOM (or of the step that ended it)
        self.ended_at = None        # command letter whose reply ended the message early

    def replies(self):
        return [r for _, r in self.steps]

    def apply(self):
        """The message as an MTA would deliver it, as (fields, body, problems).

        Header changes address a field by name (case-insensitive) and a
        1-based index among the fields of that name; index 0 counts as 1
        (sendmail).  An empty value deletes.  A change of a field that is
        not there adds it (sendmail), a deletion of a field that is not
        there does nothing; both are listed in problems, as is anything
        but header and body changes.  REPLBODY chunks together replace
        the body.
        """
        fields = list(self.fields)
        body = None
        problems = []

        def find(name, index):
            seen = 0
            low = name.lower()
            for k, (n, _) in enumerate(fields):
                if n.lower() == low:
                    seen += 1
                    if seen == index:
                        return k
            return None

        for m in self.mods:
            if m.kind == 'add':
                fields.append((m.name, m.value))
            elif m.kind == 'change':
                k = find(m.name, max(m.index, 1))
                if m.value == b'':
                    if k is None:
                        problems.append('delete of a missing field %r[%d]' % (m.name, m.index))
                    else:
                        del fields[k]
                elif k is None:
                    problems.append('change of a missing field %r[%d]' % (m.name, m.index))
                    fields.append((m.name, m.value))
                else:
                    fields[k] = (fields[k][0], m.value)
            elif m.kind == 'insert':
                fields.insert(min(m.index, len(fields)), (m.name, m.value))
            elif m.kind == 'body':
                body = (body or b'') + m.data
            else:
                problems.append('unexpected request %r' % (m,))
        if body is None:
            body = self.body
        return fields, body, problems

    def message(self):
        """apply() as message bytes (LF line ends in the header block, the
        body as it came) and the list of problems."""
        fields, body, problems = self.apply()
        out = []
        for name, value in fields:
            v = value if self.leadspc else b' ' + value
            out.append(name + b':' + v.replace(b'\r\n', b'\n') + b'\n')
        out.append(b'\n')
        return b''.join(out) + body, problems


class MilterClient:
    """One connection to a filter.

    The constructor connects and negotiates.  offered_* are what was
    offered, version/actions/protocol what the filter asked for.  Every
    socket operation has a timeout (MilterError when it runs out).
    """

    def __init__(self, host, port, timeout=60.0, version=PROT_VERSION, actions=SMFIF_ALL,
                 protocol=POSTFIX_V6_PROTOCOL, negotiate=True):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.offered_version = version
        self.offered_actions = actions
        self.offered_protocol = protocol
        self.version = self.actions = self.protocol = None
        self.symlists = b''
        self.closed = False
        if negotiate:
            self.optneg()

    # -- framing

    def send(self, cmd, data=b''):
        self.send_raw(self.packet(cmd, data))

    @staticmethod
    def packet(cmd, data=b''):
        return struct.pack('>I', len(data) + 1) + cmd + data

    def send_raw(self, raw):
        try:
            self.sock.sendall(raw)
        except OSError as e:
            raise MilterError('send: %s' % e) from e

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                got = self.sock.recv(n - len(buf))
            except socket.timeout as e:
                raise MilterError('no reply within %g s' % self.timeout) from e
            except OSError as e:
                raise MilterError('recv: %s' % e) from e
            if not got:
                raise MilterError('connection closed by the filter (%d of %d bytes)'
                                  % (len(buf), n))
            buf += got
        return bytes(buf)

    def read_reply(self):
        """The next packet; SMFIR_PROGRESS packets are skipped."""
        while True:
            (length,) = struct.unpack('>I', self._recv_exact(4))
            if length < 1 or length > 16 * 1024 * 1024:
                raise MilterError('bad packet length %d' % length)
            pkt = self._recv_exact(length)
            r = Reply(pkt[:1], pkt[1:])
            if r.cmd != SMFIR_PROGRESS:
                return r

    def pending(self, wait=0.0):
        """True when the filter sent something nobody asked for."""
        rd, _, _ = select.select([self.sock], [], [], wait)
        return bool(rd)

    # -- negotiation

    def optneg(self):
        self.send(SMFIC_OPTNEG, struct.pack('>III', self.offered_version, self.offered_actions,
                                            self.offered_protocol))
        r = self.read_reply()
        if r.cmd != SMFIC_OPTNEG or len(r.data) < 12:
            raise MilterError('bad OPTNEG reply %r' % (r,))
        self.version, self.actions, self.protocol = struct.unpack('>III', r.data[:12])
        self.symlists = r.data[12:]
        if self.version > self.offered_version or self.version < 2:
            raise MilterError('filter speaks protocol version %d' % self.version)
        if self.actions & ~self.offered_actions:
            raise MilterError('filter wants actions 0x%x, offered 0x%x'
                              % (self.actions, self.offered_actions))
        if self.protocol & ~self.offered_protocol:
            raise MilterError('filter wants protocol steps 0x%x, offered 0x%x'
                              % (self.protocol, self.offered_protocol))
        return self.version, self.actions, self.protocol

    def wants(self, bit):
        return bool(self.protocol & bit)

    @property
    def leadspc(self):
        return self.wants(SMFIP_HDR_LEADSPC)

    # -- commands

    def _step(self, cmd, data, no_reply_bit):
        """Sends a command; returns its Reply, or None when the filter
        said it would not answer this kind of command."""
        self.send(cmd, data)
        if no_reply_bit and self.wants(no_reply_bit):
            return None
        return self.read_reply()

    def macro(self, for_cmd, macros):
        """SMFIC_MACRO: name -> value pairs for the next command (no reply)."""
        data = for_cmd
        for k, v in macros.items():
            data += _b(k) + b'\0' + _b(v) + b'\0'
        self.send(SMFIC_MACRO, data)

    def connect(self, hostname='client.example', family=b'4', port=25, address='192.0.2.1'):
        if self.wants(SMFIP_NOCONNECT):
            return None
        data = _b(hostname) + b'\0' + family
        if family != b'U':
            data += struct.pack('>H', port) + _b(address) + b'\0'
        return self._step(SMFIC_CONNECT, data, SMFIP_NR_CONN)

    def helo(self, name='client.example'):
        if self.wants(SMFIP_NOHELO):
            return None
        return self._step(SMFIC_HELO, _b(name) + b'\0', SMFIP_NR_HELO)

    def mail(self, sender, args=()):
        if self.wants(SMFIP_NOMAIL):
            return None
        data = b'<' + _b(sender) + b'>\0' + b''.join(_b(a) + b'\0' for a in args)
        return self._step(SMFIC_MAIL, data, SMFIP_NR_MAIL)

    def rcpt(self, rcpt, args=()):
        if self.wants(SMFIP_NORCPT):
            return None
        data = b'<' + _b(rcpt) + b'>\0' + b''.join(_b(a) + b'\0' for a in args)
        return self._step(SMFIC_RCPT, data, SMFIP_NR_RCPT)

    def data(self):
        if self.wants(SMFIP_NODATA):
            return None
        return self._step(SMFIC_DATA, b'', SMFIP_NR_DATA)

    def header(self, name, value):
        """value as after the colon; its leading space is dropped when the
        filter did not ask for SMFIP_HDR_LEADSPC (what the MTA does)."""
        if self.wants(SMFIP_NOHDRS):
            return None
        value = _b(value)
        if not self.leadspc and value[:1] == b' ':
            value = value[1:]
        return self._step(SMFIC_HEADER, _b(name) + b'\0' + value + b'\0', SMFIP_NR_HDR)

    def eoh(self):
        if self.wants(SMFIP_NOEOH):
            return None
        return self._step(SMFIC_EOH, b'', SMFIP_NR_EOH)

    def body(self, chunk):
        if self.wants(SMFIP_NOBODY):
            return None
        if len(chunk) > CHUNK_SIZE:
            raise ValueError('body chunk of %d bytes' % len(chunk))
        return self._step(SMFIC_BODY, chunk, SMFIP_NR_BODY)

    def body_chunks(self, body, size):
        """Sends body in chunks of size bytes.  Without replies to wait
        for, many packets go out in one write (the filter reads them one
        by one all the same).  Returns the replies (or [])."""
        if self.wants(SMFIP_NOBODY):
            return []
        if size < 1 or size > CHUNK_SIZE:
            raise ValueError('chunk size %d' % size)
        if not self.wants(SMFIP_NR_BODY):
            return [self.body(body[i:i + size]) for i in range(0, len(body), size)]
        batch = []
        pend = 0
        for i in range(0, len(body), size):
            p = self.packet(SMFIC_BODY, body[i:i + size])
            batch.append(p)
            pend += len(p)
            if pend >= 256 * 1024:
                self.send_raw(b''.join(batch))
                batch, pend = [], 0
        if batch:
            self.send_raw(b''.join(batch))
        return []

    def eom(self, result=None, chunk=b''):
        """SMFIC_BODYEOB; collects the modification requests into
        result.mods (a new Result when none is given) up to the final
        reply, which goes to result.final."""
        if result is None:
            result = Result([], b'', self.leadspc)
        self.send(SMFIC_BODYEOB, chunk)
        while True:
            r = self.read_reply()
            if r.cmd in FINAL_REPLIES:
                result.final = r
                result.steps.append((SMFIC_BODYEOB, r))
                return result
            result.mods.append(parse_modification(r))

    def abort(self):
        self.send(SMFIC_ABORT)

    def quit(self):
        """SMFIC_QUIT (no reply), then close."""
        if not self.closed:
            try:
                self.send(SMFIC_QUIT)
            except MilterError:
                pass
        self.close()

    def quit_nc(self):
        """SMFIC_QUIT_NC: the connection stays for a new SMTP session;
        negotiation starts again."""
        self.send(SMFIC_QUIT_NC)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    # -- a whole message

    def start_message(self, env, fields, result):
        """MAIL (with the queue id macro) and RCPTs.  False when a reply
        ended the message (result.final, result.ended_at say which)."""
        self.macro(SMFIC_MAIL, {'i': env.queue_id, '{mail_addr}': env.sender})
        steps = [(SMFIC_MAIL, lambda: self.mail(env.sender))]
        for rc in env.recipients:
            steps.append((SMFIC_RCPT, lambda rc=rc: (
                self.macro(SMFIC_RCPT, {'{rcpt_addr}': rc}), self.rcpt(rc))[1]))
        steps.append((SMFIC_DATA, self.data))
        for cmd, fn in steps:
            r = fn()
            if r is None:
                continue
            result.steps.append((cmd, r))
            if r.cmd != SMFIR_CONTINUE:
                result.final = r
                result.ended_at = cmd
                return False
        return True

    def send_headers(self, fields, result):
        for name, value in fields:
            r = self.header(name, value)
            if r is not None:
                result.steps.append((SMFIC_HEADER, r))
                if r.cmd != SMFIR_CONTINUE:
                    result.final, result.ended_at = r, SMFIC_HEADER
                    return False
        r = self.eoh()
        if r is not None:
            result.steps.append((SMFIC_EOH, r))
            if r.cmd != SMFIR_CONTINUE:
                result.final, result.ended_at = r, SMFIC_EOH
                return False
        return True

    def send_message(self, env, raw, chunk=CHUNK_SIZE):
        """One whole message, MAIL to EOM; returns the Result."""
        fields, body = split_message(raw)
        result = Result(fields, body, self.leadspc)
        if not self.start_message(env, fields, result):
            return result
        if not self.send_headers(fields, result):
            return result
        for r in self.body_chunks(body, chunk):
            if r is not None:
                result.steps.append((SMFIC_BODY, r))
                if r.cmd != SMFIR_CONTINUE:
                    result.final, result.ended_at = r, SMFIC_BODY
                    return result
        self.macro(SMFIC_BODYEOB, {'i': env.queue_id})
        return self.eom(result)


def _b(s):
    return s if isinstance(s, bytes) else s.encode('utf-8')
