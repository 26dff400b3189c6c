# SPDX-License-Identifier: GPL-2.0-or-later
"""pfharness - private Postfix instances and a milter process for tests.

Standard library only.  Everything lives in one temporary directory and
listens on 127.0.0.1 ports chosen at run time; nothing of the system's
Postfix (/etc/postfix/main.cf, /var/spool/postfix) is read or written, so
the tests run on a machine where Postfix is installed but not configured
(Debian's "No configuration").  Must run as root: the Postfix master
daemon starts as root and drops to mail_owner itself.

    with pfharness.Harness() as h:
        lgwan = h.lgwan()                          # delivers into a Maildir
        gw = h.gateway(lgwan, milter=None)         # relays to lgwan
        h.start()
        r = pfharness.send(gw.port, 'a@example.com', ['x@lgwan.example.jp'], b'...')
        lgwan.wait_for_delivery(1, timeout=60)

Leaving the "with" block (also on an exception) stops every Postfix
instance and every milter process started through the harness; an atexit
handler does the same if the interpreter exits some other way.

Postfix pitfalls met on the way, and what this module does about them:

* Alternate configuration directories.  Run by root, `postfix -c DIR` and
  `postqueue -c DIR` accept DIR without it being listed in
  alternate_config_directories of the default main.cf, and without any
  /etc/postfix/main.cf at all (checked with Postfix 3.7 on Debian 12;
  only other users of the set-gid postqueue/postdrop are held to that
  list).  The children of the master find DIR through MAIL_CONFIG, which
  is in the default import_environment.
* meta_directory (postfix-files, post-install) and daemon_directory keep
  their compiled-in defaults (/etc/postfix, /usr/lib/postfix/sbin): only
  the variable parts (queue, data, log) move into the temporary directory.
* A fresh queue_directory.  `postfix start` runs `postfix-script
  check-fatal`, which runs `post-install create-missing`: that creates the
  queue subdirectories with the owners and modes of postfix-files
  (mail_owner for most, setgid_group for maildrop/ and public/), and the
  data_directory owned by mail_owner.  So only the top directory must
  exist, owned by root and not writable by others; mail_owner = postfix and
  setgid_group = postdrop are written out explicitly so that a changed
  compiled-in default cannot surprise us.
* compatibility_level = 3.6: without it Postfix 3.x logs a backwards-
  compatibility warning for every safety default and keeps the old ones
  (e.g. smtputf8, relay restrictions).
* Logging without syslog: maillog_file = <dir>/maillog needs the postlog
  service in master.cf (`postlog unix-dgram n - n - 1 postlogd`; without it
  check-fatal refuses to start) and maillog_file_prefixes must name a
  prefix of the file (the default allows only /var and /dev/stdout).
* chroot is off ("n" in the fifth column of master.cf): a chrooted daemon
  would need copies of /etc/services, resolv.conf, etc. under the queue.
* Each instance has its own myhostname (NAME.test): the maillog lines and
  the Received: fields then say which hop did what.
* No DNS: smtp_dns_support_level = disabled and smtp_host_lookup = native;
  the next hop is always a bracketed [127.0.0.1]:PORT, so no MX lookup.
* local_header_rewrite_clients is empty: by default (permit_inet_interfaces)
  a client on 127.0.0.1 counts as local, and cleanup would then add
  Message-ID:, Date:, From: and "To: undisclosed-recipients:;" and qualify
  bare addresses; a gateway receives mail from the internet, which is never
  rewritten like that, and the tests compare messages byte for byte.
* disable_mime_output_conversion = yes: an SMTP client may otherwise turn
  8bit bodies into quoted-printable when the next hop does not announce
  8BITMIME (both ends here do, but the setting makes it certain).
* in_flow_delay = 0: smtpd would otherwise slow down clients by up to 1 s
  per message when the queue manager lags, which only makes the load test
  slower.
* Retries: queue_run_delay, minimal_backoff_time and maximal_backoff_time
  are seconds, so deferred mail is retried quickly; `postqueue -c DIR -f`
  (flush()) forces it at once.
* virtual(8) delivers as virtual_uid_maps (static:65534, nobody); it needs
  virtual_minimum_uid <= that uid, search permission on every directory
  above virtual_mailbox_base, and write permission in the Maildir.  The
  mailbox map is a regexp: table, which needs no postmap; virtual(8) does
  not allow $1 substitutions from regexp tables, so every address of the
  test domain goes to one Maildir ("lgwan/", trailing slash = Maildir).
* virtual(8) adds Return-Path:, Delivered-To: and X-Original-To: on
  delivery; every SMTP hop adds a Received: field (POSTFIX_FIELDS).
* Stopping: `postfix -c DIR stop` signals the master and waits up to 5 s.
  The master is a session and process-group leader (setsid), and its
  children stay in its group, so whatever is left afterwards is killed with
  SIGKILL to the group -PID taken from the master's pid file; nothing is
  killed by name.
* smtpd_milters uses Postfix's own spelling inet:127.0.0.1:PORT (libmilter
  writes inet:PORT@127.0.0.1).  With milter_default_action = tempfail a
  milter that cannot be reached makes smtpd answer "451 4.7.1 Service
  unavailable - try again later" to MAIL FROM (the greeting and EHLO still
  succeed), so nothing is queued; the message stays with the client or
  the sending MTA.
"""
import atexit
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time

DOMAIN = 'lgwan.example.jp'
NOBODY = 65534
# header fields Postfix adds on the way (stripped before comparisons)
POSTFIX_FIELDS = ('received', 'return-path', 'delivered-to', 'x-original-to')

_live = []  # everything to stop at exit: objects with a stop() method


def _stop_all():
    while _live:
        obj = _live.pop()
        try:
            obj.stop()
        except Exception as e:  # pylint: disable=broad-except
            print('# pfharness: stopping %r: %s' % (obj, e))


atexit.register(_stop_all)


class HarnessError(Exception):
    pass


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def pid_alive(pid):
    """True when pid is a process that has not exited (a zombie left for an
    init that does not reap counts as gone)."""
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def group_alive(pgid):
    """Pids of live (not zombie) processes in process group pgid."""
    found = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d, encoding='ascii', errors='replace') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != 'Z' and int(fields[2]) == pgid:
            found.append(int(d))
    return found


def port_open(port, host='127.0.0.1'):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, step=0.1, what='condition'):
    """Poll pred() until it is true; HarnessError after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise HarnessError('timed out after %gs waiting for %s' % (timeout, what))
        time.sleep(step)


def tool(name):
    """Path of a Postfix or other system command; /usr/sbin need not be in
    PATH."""
    for d in ('/usr/sbin', '/usr/bin', '/sbin', '/bin'):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return name


def _run(cmd, timeout=60, check=True):
    cmd = [tool(cmd[0])] + list(cmd[1:])
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       check=False)
    if check and r.returncode != 0:
        raise HarnessError('%s: exit %d: %s%s' % (' '.join(cmd), r.returncode,
                                                  r.stdout.decode(errors='replace'),
                                                  r.stderr.decode(errors='replace')))
    return r


# master.cf: the services a relaying / virtual-delivering Postfix uses,
# every one unchrooted.  %(smtpd)s is the listening address 127.0.0.1:PORT.
MASTER_CF = """\
# written by tests/milter/pfharness.py
# service type  private unpriv  chroot  wakeup  maxproc command
%(smtpd)s inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """One private Postfix instance under ROOT/NAME."""

    def __init__(self, root, name, settings):
        self.name = name
        self.dir = os.path.join(root, name)
        self.conf = os.path.join(self.dir, 'etc')
        self.queue = os.path.join(self.dir, 'queue')
        self.data = os.path.join(self.dir, 'data')
        self.maillog = os.path.join(self.dir, 'maillog')
        self.port = free_port()
        self.maildir = None
        self.running = False
        for d in (self.dir, self.conf, self.queue):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        main = {
            'compatibility_level': '3.6',
            'queue_directory': self.queue,
            'data_directory': self.data,
            'mail_owner': 'postfix',
            'setgid_group': 'postdrop',
            'myhostname': '%s.test' % name,
            'mydomain': 'test',
            'myorigin': '$myhostname',
            'mydestination': '',
            'inet_interfaces': '127.0.0.1',
            'inet_protocols': 'ipv4',
            'mynetworks': '127.0.0.0/8',
            'smtpd_relay_restrictions': 'permit_mynetworks, reject_unauth_destination',
            'smtpd_recipient_restrictions': '',
            'smtpd_banner': '$myhostname ESMTP',
            'maillog_file': self.maillog,
            'maillog_file_prefixes': root,
            'smtp_dns_support_level': 'disabled',
            'smtp_host_lookup': 'native',
            'lmtp_host_lookup': 'native',
            'smtp_connect_timeout': '10s',
            'local_header_rewrite_clients': '',
            'append_dot_mydomain': 'no',
            'disable_mime_output_conversion': 'yes',
            'alias_maps': '',
            'alias_database': '',
            'local_recipient_maps': '',
            'biff': 'no',
            'in_flow_delay': '0',
            'queue_run_delay': '1s',
            'minimal_backoff_time': '1s',
            'maximal_backoff_time': '2s',
            'maximal_queue_lifetime': '1h',
            'bounce_queue_lifetime': '1h',
            'smtpd_client_connection_count_limit': '100',
            'default_destination_concurrency_limit': '20',
            'smtputf8_enable': 'no',
        }
        main.update(settings)
        self.settings = main
        with open(os.path.join(self.conf, 'main.cf'), 'w', encoding='utf-8') as f:
            f.write('# written by tests/milter/pfharness.py\n')
            for k, v in main.items():
                f.write('%s = %s\n' % (k, v))
        with open(os.path.join(self.conf, 'master.cf'), 'w', encoding='utf-8') as f:
            f.write(MASTER_CF % {'smtpd': '127.0.0.1:%d' % self.port})

    def __repr__(self):
        return 'Postfix(%s, port %d)' % (self.name, self.port)

    def _cmd(self, *args, timeout=60, check=True):
        return _run(list(args), timeout=timeout, check=check)

    def start(self, timeout=60):
        """postfix start: returns when the master has bound its sockets."""
        self.running = True  # from here on stop() has something to do
        _live.append(self)
        self._cmd('postfix', '-c', self.conf, 'start', timeout=timeout)
        wait_until(lambda: port_open(self.port), 30, what='%s smtpd port' % self.name)

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, 'pid', 'master.pid'), encoding='ascii') as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        """postfix stop, then SIGKILL to what is left of the master's group."""
        if self in _live:
            _live.remove(self)
        if not self.running:
            return
        self.running = False
        pid = self.master_pid()
        self._cmd('postfix', '-c', self.conf, 'stop', timeout=30, check=False)
        if pid is None:
            return
        # whatever is left of the master's process group, if it is still
        # ours (working directory in our queue: pids are not reused that
        # fast, but a wrong kill would hit another test)
        left = []
        for p in group_alive(pid):
            try:
                if os.readlink('/proc/%d/cwd' % p).startswith(self.queue):
                    left.append(p)
            except OSError:
                pass
        if left:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def postconf(self, *settings):
        """Change main.cf (postconf -e) and tell a running master."""
        self._cmd('postconf', '-c', self.conf, '-e', *settings)
        if self.running:
            self._cmd('postfix', '-c', self.conf, 'reload')

    # --- the queue -------------------------------------------------------
    def queue_entries(self):
        """The queue as `postqueue -j` shows it: a list of dicts."""
        r = self._cmd('postqueue', '-c', self.conf, '-j')
        return [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]

    def queue_ids(self):
        return [e['queue_id'] for e in self.queue_entries()]

    def queued_count(self):
        return len(self.queue_entries())

    def flush(self):
        """postqueue -f: retry every deferred message now."""
        self._cmd('postqueue', '-c', self.conf, '-f')

    def wait_queue_empty(self, timeout):
        wait_until(lambda: self.queued_count() == 0, timeout, step=0.5,
                   what='empty queue of %s' % self.name)

    def log(self):
        try:
            with open(self.maillog, encoding='utf-8', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    # --- the Maildir ------------------------------------------------------
    def delivered(self):
        """Paths of the messages in the Maildir (new/ and cur/), sorted."""
        out = []
        for sub in ('new', 'cur'):
            d = os.path.join(self.maildir, sub)
            if os.path.isdir(d):
                out.extend(os.path.join(d, n) for n in os.listdir(d))
        return sorted(out)

    def delivered_count(self):
        return len(self.delivered())

    def wait_for_delivery(self, n, timeout):
        """Wait until the Maildir holds at least n messages; return the paths.

        Bounded: HarnessError after timeout seconds."""
        wait_until(lambda: self.delivered_count() >= n, timeout, step=0.2,
                   what='%d message(s) in %s (have %d)' % (n, self.maildir,
                                                           self.delivered_count()))
        return self.delivered()

    def clear_maildir(self):
        for p in self.delivered():
            os.unlink(p)


class Milter:
    """The milter program as a child process, stderr captured to a file."""

    def __init__(self, root, argv_prefix, args, name='milter'):
        self.root = root
        self.argv_prefix = list(argv_prefix)
        self.args = list(args)
        self.port = free_port()
        self.log_path = os.path.join(root, '%s.stderr' % name)
        self.proc = None
        self.name = name

    def __repr__(self):
        return 'Milter(%s, port %d)' % (self.name, self.port)

    @property
    def postfix_socket(self):
        return 'inet:127.0.0.1:%d' % self.port

    def start(self, timeout=90):
        """Start and wait until the port accepts connections (bounded)."""
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError('%r already running' % self)
        argv = self.argv_prefix + ['--socket', 'inet:%d@127.0.0.1' % self.port,
                                   '--foreground'] + self.args
        logf = open(self.log_path, 'ab')  # pylint: disable=consider-using-with
        logf.write(('# pfharness: %s\n' % ' '.join(argv)).encode())
        logf.flush()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=logf, start_new_session=True)
        logf.close()
        if self not in _live:
            _live.append(self)

        def up():
            if self.proc.poll() is not None:
                raise HarnessError('%r exited with %d at start: %s' %
                                   (self, self.proc.returncode, self.log()[-2000:]))
            return port_open(self.port)

        wait_until(up, timeout, step=0.1, what='%r to listen' % self)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM, wait (bounded), then SIGKILL; returns the exit status."""
        if self in _live:
            _live.remove(self)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log(self):
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


class Harness:
    """A temporary directory holding Postfix instances and milters."""

    def __init__(self, keep=False):
        if os.geteuid() != 0:
            raise HarnessError('pfharness needs root (the Postfix master runs as root)')
        # meson ends a test that runs too long with SIGTERM, which by default
        # kills Python without running "finally" or atexit: make it an
        # exception, so the daemons (not our children) are stopped
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        # not $TMPDIR: virtual(8) delivers as nobody and needs search
        # permission on every directory above the Maildir, which a private
        # TMPDIR (e.g. under /root) would not give
        self.root = tempfile.mkdtemp(prefix='mugaika-pf.',
                                     dir=os.environ.get('PFHARNESS_TMPDIR', '/tmp'))
        os.chmod(self.root, 0o755)
        self.keep = keep or bool(os.environ.get('PFHARNESS_KEEP'))
        self.instances = []
        self.milters = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        for m in self.milters:
            m.stop()
        for pf in reversed(self.instances):
            pf.stop()
        if not self.keep:
            subprocess.run(['rm', '-rf', '--', self.root], check=False)

    def path(self, *p):
        return os.path.join(self.root, *p)

    def instance(self, name, settings):
        pf = Postfix(self.root, name, settings)
        self.instances.append(pf)
        return pf

    def lgwan(self, name='lgwan'):
        """The LGWAN-side MTA: every address of DOMAIN goes into one Maildir."""
        pf = None
        base = self.path(name, 'mail')
        table = self.path(name, 'vmailbox.regexp')
        settings = {
            'virtual_mailbox_domains': DOMAIN,
            'virtual_mailbox_base': base,
            'virtual_mailbox_maps': 'regexp:' + table,
            'virtual_uid_maps': 'static:%d' % NOBODY,
            'virtual_gid_maps': 'static:%d' % NOBODY,
            'virtual_minimum_uid': '100',
            'virtual_destination_concurrency_limit': '20',
            'virtual_destination_recipient_limit': '1',
        }
        pf = self.instance(name, settings)
        with open(table, 'w', encoding='ascii') as f:
            f.write('/@%s$/ lgwan/\n' % DOMAIN.replace('.', r'\.'))
        pf.maildir = os.path.join(base, 'lgwan')
        for sub in ('', 'new', 'cur', 'tmp'):
            d = os.path.join(pf.maildir, sub)
            os.makedirs(d, exist_ok=True)
        for d in (base, pf.maildir) + tuple(os.path.join(pf.maildir, s)
                                            for s in ('new', 'cur', 'tmp')):
            os.chown(d, NOBODY, NOBODY)
            os.chmod(d, 0o700)
        return pf

    def gateway(self, nexthop, milter=None, name='gateway', extra=None):
        """The internet-zone MTA: relays DOMAIN to nexthop, through the milter."""
        settings = {
            'relay_domains': DOMAIN,
            'relayhost': '[127.0.0.1]:%d' % nexthop.port,
        }
        if milter is not None:
            settings.update({
                'smtpd_milters': milter if isinstance(milter, str) else milter.postfix_socket,
                'milter_default_action': 'tempfail',
                'milter_protocol': '6',
                'milter_connect_timeout': '10s',
                'milter_command_timeout': '60s',
                'milter_content_timeout': '120s',
            })
        settings.update(extra or {})
        return self.instance(name, settings)

    def sender(self, nexthop, name='sender'):
        """An MTA on the internet side that relays everything to nexthop and
        keeps what nexthop refuses with 4xx in its queue."""
        return self.instance(name, {
            'relay_domains': DOMAIN,
            'relayhost': '[127.0.0.1]:%d' % nexthop.port,
        })

    def milter(self, argv_prefix, args, name='milter'):
        m = Milter(self.root, argv_prefix, args, name)
        self.milters.append(m)
        return m

    def start(self):
        """Start every instance not running yet (the last-made first)."""
        for pf in reversed(self.instances):
            if not pf.running:
                pf.start()


class Reply:
    """What the SMTP server answered: stage ('connect', 'mail', 'rcpt',
    'data', 'done'), code and text of the last reply."""

    def __init__(self, stage, code, text):
        self.stage, self.code, self.text = stage, code, text

    @property
    def accepted(self):
        return self.stage == 'done' and 200 <= self.code < 300

    def __repr__(self):
        return '<%s %d %s>' % (self.stage, self.code, self.text)


class Session:
    """One SMTP connection to 127.0.0.1:port that can carry many messages.

    send() returns a Reply for each; after a refusal the transaction is
    reset and the connection stays usable.  Line ends become CRLF here
    (smtplib converts only str, and would end an LF-terminated bytes
    message with an extra empty line); smtplib dot-stuffs."""

    def __init__(self, port, helo='client.example.com', timeout=180):
        self.smtp = smtplib.SMTP(timeout=timeout)
        code, msg = self.smtp.connect('127.0.0.1', port)
        if code != 220:
            raise HarnessError('connect to %d: %d %s' % (port, code, msg))
        code, msg = self.smtp.ehlo(helo)
        if code != 250:
            raise HarnessError('EHLO to %d: %d %s' % (port, code, msg))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()

    def send(self, sender, recipients, data):
        s = self.smtp
        data = re.sub(rb'\r?\n', b'\r\n', data)
        try:
            code, msg = s.mail(sender)
            if code != 250:
                s.rset()
                return Reply('mail', code, msg.decode(errors='replace'))
            for r in recipients:
                code, msg = s.rcpt(r)
                if code not in (250, 251):
                    s.rset()
                    return Reply('rcpt', code, msg.decode(errors='replace'))
            try:
                code, msg = s.data(data)
            except smtplib.SMTPDataError as e:  # DATA itself refused
                s.rset()
                return Reply('data-cmd', e.smtp_code, e.smtp_error.decode(errors='replace'))
            return Reply('done' if code == 250 else 'data', code, msg.decode(errors='replace'))
        except smtplib.SMTPServerDisconnected as e:
            return Reply('disconnected', 0, str(e))


def send(port, sender, recipients, data, helo='client.example.com', timeout=180):
    """Send one message (bytes) over a new connection to 127.0.0.1:port and
    return a Reply.

    The reply to the end of DATA is what a milter's verdict becomes (250,
    451 4.7.1, 550 5.7.1); a refusal at an earlier stage (a milter that
    cannot be reached makes Postfix refuse MAIL FROM) is returned too."""
    try:
        sess = Session(port, helo, timeout)
    except (HarnessError, smtplib.SMTPException, OSError) as e:
        return Reply('connect', getattr(e, 'smtp_code', 0), str(e))
    with sess:
        return sess.send(sender, recipients, data)


def selftest():
    """The harness alone: 3 messages sent to the gateway (no milter) arrive
    in the lgwan Maildir, unchanged but for the fields Postfix adds."""
    import email
    import email.policy
    fails = 0
    with Harness() as h:
        lgwan = h.lgwan()
        gw = h.gateway(lgwan)
        h.start()
        sent = {}
        for i in range(3):
            mid = '<pfharness-%d@example.com>' % i
            body = ('From: a@example.com\nTo: user%d@%s\nSubject: harness %d\n'
                    'Message-ID: %s\n\nline one\n.leading dot\n' % (i, DOMAIN, i, mid)).encode()
            r = send(gw.port, 'a@example.com', ['user%d@%s' % (i, DOMAIN)], body)
            print('%s %d - harness: message %d accepted by the gateway %r' %
                  ('ok' if r.accepted else 'not ok', i + 1, i, r))
            fails += not r.accepted
            sent[mid] = body
        try:
            paths = lgwan.wait_for_delivery(3, timeout=60)
        except HarnessError as e:
            paths = lgwan.delivered()
            print('# %s\n# gateway log:\n# %s\n# lgwan log:\n# %s' % (
                e, gw.log()[-1500:].replace('\n', '\n# '),
                lgwan.log()[-1500:].replace('\n', '\n# ')))
        got = {}
        for p in paths:
            with open(p, 'rb') as f:
                raw = f.read()
            m = email.message_from_bytes(raw, policy=email.policy.compat32)
            for k in POSTFIX_FIELDS:
                del m[k]
            got[m['Message-ID']] = m.as_bytes()
        ok = len(paths) == 3 and got == sent
        print('%s 4 - harness: 3 messages in the Maildir, equal to what was sent' %
              ('ok' if ok else 'not ok'))
        if not ok:
            print('# sent %r\n# got %r' % (sent, got))
        fails += not ok
        ok = gw.queued_count() == 0 and lgwan.queued_count() == 0 and 'status=sent' in gw.log()
        print('%s 5 - harness: queues empty, maillog readable' % ('ok' if ok else 'not ok'))
        fails += not ok
        pids = [pf.master_pid() for pf in h.instances]
    alive = [q for p in pids if p for q in group_alive(p)]
    print('%s 6 - harness: no Postfix process left after close %r' %
          ('not ok' if alive or None in pids else 'ok', alive))
    fails += bool(alive) or None in pids
    print('1..6')
    return 1 if fails else 0


if __name__ == '__main__':
    raise SystemExit(selftest())
