# SPDX-License-Identifier: GPL-2.0-or-later
"""cdr-archive: the "archive" handler of mugaika-worker (src/worker/archive.c).

Drives the worker directly (mgw.run) and checks what comes out:
  - zip, tar (plain, gz, bz2, xz), 7z, rar4, rar5, cab and iso from the corpus unpack
    to the member names and byte-exact contents that Python's zipfile and
    tarfile read (7z and rar: the known content of the RecursiveExtractor
    test data); a multi-megabyte member streams unchanged;
  - a bare gz/bz2/xz gives one member named after the item without its
    suffix ("data" without a name); one layer per run;
  - CP932 (and EUC-JP) names without the UTF-8 flag are decoded;
  - traversal, absolute, drive, backslash, control and bidi names come out
    safe and flagged name-changed; zip local/central name mismatch flagged
    (and, through `mugaika sanitize`, the member's "name-mismatch" flag is in
    the audit record and a rule can match it);
  - symlinks, hard links, FIFOs and devices are not emitted (one note each);
  - encrypted archives of every kind give "encrypted";
  - max-members, max-total and max-ratio give "limit"; max-ratio both per
    member and for the whole item: 16 members that each pass their own
    check are refused together, a zip exactly 1/100 of its expansion is
    accepted and one a byte smaller refused (the whole-item reason);
    every bomb of recursive-extractor/Bombs ends in "limit" within 5 s under a 256 MiB
    address-space cap (the outer .bz2 layer is unpacked by a first run with
    max-ratio=0, since that layer alone expands 5000 times and more);
    overlapping-entry zips (zbsm style and duplicate offsets) too;
  - corrupt or truncated archives fail cleanly; and every archive of
    libarchive-testfiles, recursive-extractor and tika gives a Z record
    and exit 0 within 20 s.
"""
import bz2
import email
import email.policy
import gzip
import io
import json
import lzma
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgw  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
WORKER = A.worker
AS = '268435456'  # 256 MiB of address space for every run
# LeakSanitizer stops the world with a clone the worker's seccomp filter
# refuses; leak checks cannot run inside the sandbox (ASan still does).
os.environ['ASAN_OPTIONS'] = (os.environ.get('ASAN_OPTIONS', '') + ':detect_leaks=0').lstrip(':')

RE = os.path.join(CORPUS, 'recursive-extractor')
REA = os.path.join(RE, 'TestDataArchives')
LA = os.path.join(CORPUS, 'libarchive-testfiles')
TIKA = os.path.join(CORPUS, 'tika')
LOREM = open(os.path.join(REA, 'Lorem.txt'), 'rb').read()
LOREM_CRLF = LOREM.replace(b'\n', b'\r\n')


def run(path=None, data=None, timeout=20, **opts):
    """One worker run; a run past the timeout (killed by subprocess.run) is
    a Result without status, so the checks report it and go on."""
    o = {'as': AS}
    o.update({k.replace('_', '-'): str(v) for k, v in opts.items()})
    try:
        return mgw.run(WORKER, 'archive', path=path, data=data, opts=o, timeout=timeout)
    except subprocess.TimeoutExpired:
        r = mgw.Result()
        r.reason = 'timed out after %d s' % timeout
        return r


def ok_run(r):
    return r.returncode == 0 and r.status is not None and r.protocol_error is None


def outs(r):
    return {o.name: bytes(o.data) for o in r.outputs}


def desc(r):
    return 'rc=%s status=%s reason=%r outputs=%r notes=%r stderr=%r' % (
        r.returncode, r.status, r.reason, r.outputs[:8], r.notes[:8], r.stderr[-400:])


# --- small builders ---------------------------------------------------------

def raw_zip(entries):
    """A stored zip from (local name bytes, central name bytes, data, flags)."""
    body, cd = b'', b''
    for lname, cname, data, flags in entries:
        crc = zlib.crc32(data)
        off = len(body)
        body += struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, flags, 0, 0, 0, crc, len(data),
                            len(data), len(lname), 0) + lname + data
        cd += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, flags, 0, 0, 0, crc,
                          len(data), len(data), len(cname), 0, 0, 0, 0, 0, off) + cname
    return body + cd + struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, len(entries), len(entries),
                                   len(cd), len(body), 0)


def crc_concat(crc_a, crc_b, len_b):
    """crc32(A + B) from crc32(A), crc32(B) and len(B)."""
    zeros = b'\0' * len_b
    return zlib.crc32(zeros, crc_a) ^ zlib.crc32(zeros) ^ crc_b


def zbsm(nfiles, kernel_len):
    """Overlapping members after D. Fifield's "better zip bomb": member i's
    deflate stream quotes member i+1's local header in a stored block and
    runs on into member i+1's data; the last member's data is a shared
    kernel of kernel_len bytes compressed. Expands to about nfiles *
    kernel_len bytes."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel = co.compress(b'a' * kernel_len) + co.flush()
    names = [b'f%04d' % i for i in range(nfiles)]
    hdr = [None] * nfiles
    quote = [b''] * nfiles
    size = [0] * nfiles  # uncompressed
    crc = [0] * nfiles
    csize = [0] * nfiles
    for i in range(nfiles - 1, -1, -1):
        if i == nfiles - 1:
            size[i], crc[i], csize[i] = kernel_len, zlib.crc32(b'a' * kernel_len), len(kernel)
        else:
            nxt = hdr[i + 1]
            quote[i] = struct.pack('<BHH', 0, len(nxt), len(nxt) ^ 0xffff)
            size[i] = len(nxt) + size[i + 1]
            crc[i] = crc_concat(zlib.crc32(nxt), crc[i + 1], size[i + 1])
            csize[i] = len(quote[i]) + len(nxt) + csize[i + 1]
        hdr[i] = struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, 8, 0, 0, crc[i], csize[i],
                             size[i], len(names[i]), 0) + names[i]
    body, offs = b'', []
    for i in range(nfiles):
        offs.append(len(body))
        body += hdr[i] + quote[i]
    body += kernel
    cd = b''
    for i in range(nfiles):
        cd += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, 0, 8, 0, 0, crc[i], csize[i],
                          size[i], len(names[i]), 0, 0, 0, 0, 0, offs[i]) + names[i]
    return body + cd + struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, nfiles, nfiles, len(cd),
                                   len(body), 0)


def dup_offset_zip(n, member_len):
    """n central-directory entries that all point at one local header."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = co.compress(b'\0' * member_len) + co.flush()
    c = zlib.crc32(b'\0' * member_len)
    body = struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, 8, 0, 0, c, len(data), member_len, 1,
                       0) + b'a' + data
    cd = b''
    for i in range(n):
        name = b'm%03d' % i
        cd += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, 0, 8, 0, 0, c, len(data),
                          member_len, len(name), 0, 0, 0, 0, 0, 0) + name
    return body + cd + struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, n, n, len(cd), len(body), 0)


def py_zip(members, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', method) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


def py_tar(build, mode='w'):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as t:
        build(t)
    return buf.getvalue()


def add_file(t, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))


def add_special(t, name, kind, link=''):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    t.addfile(ti)


# --- 1. corpus archives against Python's readers ------------------------------

def zip_expected(path):
    exp = {}
    with zipfile.ZipFile(path) as z:
        for i in z.infolist():
            mode = i.external_attr >> 16
            if i.is_dir() or (mode & 0o170000) == 0o120000:
                continue
            exp[i.filename] = z.read(i)
    return exp


def tar_expected(path):
    exp = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if m.isreg():
                exp[m.name] = t.extractfile(m).read()
    return exp


for rel in ['TestData.zip', 'TestDataArchivesNested.zip', 'NestedFormatsTest.zip']:
    p = os.path.join(REA, rel)
    r = run(p)
    exp = zip_expected(p)
    check(r.status == 'ok' and outs(r) == exp and len(r.outputs) == len(exp),
          'zip %s: members and bytes equal zipfile' % rel, desc(r))
for p in [os.path.join(LA, 'libarchive', 'test_compat_zip_5.zip'),
          os.path.join(LA, 'libarchive', 'test_read_format_zip_lzma_multi.zipx'),
          os.path.join(LA, 'libarchive', 'test_read_format_zip_bzip2.zipx'),
          os.path.join(LA, 'unzip', 'test_basic.zip')]:
    r = run(p)
    check(r.status == 'ok' and outs(r) == zip_expected(p),
          'zip %s: members and bytes equal zipfile' % os.path.basename(p), desc(r))

for rel in ['TestData.tar', 'TestData.tar.gz', 'TestData.tar.bz2', 'TestData.tar.xz']:
    p = os.path.join(REA, rel)
    r = run(p)
    exp = tar_expected(p)
    check(r.status == 'ok' and outs(r) == exp and len(r.outputs) == len(exp) and exp,
          'tar %s: members and bytes equal tarfile' % rel, desc(r))
p = os.path.join(TIKA, 'test-nested-tarball.tar')
r = run(p)
check(r.status == 'ok' and outs(r) == tar_expected(p),
      'tika test-nested-tarball.tar equals tarfile', desc(r))

LOREM_3 = {'TestData/Foo/Bar/Lorem.txt': LOREM_CRLF, 'TestData/Foo/Lorem.txt': LOREM_CRLF,
           'TestData/Lorem.txt': LOREM_CRLF}
for rel in ['TestData.7z', 'TestData.rar4', 'TestData.rar']:
    r = run(os.path.join(REA, rel))
    check(r.status == 'ok' and outs(r) == LOREM_3 and len(r.outputs) == 3,
          '%s: the three Lorem.txt members, byte-exact' % rel, desc(r))
r = run(os.path.join(REA, 'TestData.7z'))
info = r.notes_of('info')
check(any('7z' in t and '3 members' in t for t in info), '7z: an info note with format and count',
      r.notes)
check(all(o.type is None for o in r.outputs), 'outputs carry no type (the parent detects)',
      r.outputs)

# cab and ISO 9660 (corkami's minimal samples): the one file each holds
for rel, want in [('cabinet.cab', {'README.txt': b'Microsoft Cabinet\r\n'}),
                  ('iso.iso', {'ISO.TXT': b'ISO\n'})]:
    r = run(os.path.join(CORPUS, 'corkami', 'mini', rel))
    check(r.status == 'ok' and outs(r) == want, '%s: its member, byte-exact' % rel, desc(r))

# a big member streams through in blocks, unchanged
rnd = random.Random(20240601).randbytes(3 * 1024 * 1024 + 17)
r = run(data=py_zip([('big.bin', rnd), ('small.txt', b'x')], zipfile.ZIP_STORED))
check(r.status == 'ok' and outs(r) == {'big.bin': rnd, 'small.txt': b'x'},
      'a 3 MiB stored member comes out byte-exact', desc(r))

# --- 2. bare compressed files -------------------------------------------------

TEXT = b'bare compressed content\n' * 100
for comp, name, expect in [(gzip.compress, 'report.txt.gz', 'report.txt'),
                           (bz2.compress, 'NOTES.BZ2', 'NOTES'),
                           (lambda d: lzma.compress(d, format=lzma.FORMAT_XZ), 'dir/sub/log.xz',
                            'log'),
                           (gzip.compress, None, 'data'),
                           (bz2.compress, 'nosuffix', 'nosuffix')]:
    opts = {} if name is None else {'name': name}
    r = run(data=comp(TEXT), **opts)
    check(r.status == 'ok' and len(r.outputs) == 1 and r.outputs[0].name == expect and
          bytes(r.outputs[0].data) == TEXT,
          'bare file %r gives one member %r' % (name, expect), desc(r))
inner = py_zip([('in.txt', b'inside')])
r = run(data=gzip.compress(inner), name='x.zip.gz')
check(r.status == 'ok' and outs(r) == {'x.zip': inner},
      'a gzipped zip is a bare file: the zip comes out whole', desc(r))
gz1 = gzip.compress(TEXT)
r = run(data=gzip.compress(gz1), name='t.gz.gz')
check(r.status == 'ok' and outs(r) == {'t.gz': gz1}, 'one compression layer per run', desc(r))
r = run(data=gzip.compress(b'\0' * 1024 + b'MZ payload after a zero block'), name='z.bin.gz')
check(r.status == 'ok' and outs(r) == {'z.bin': b'\0' * 1024 + b'MZ payload after a zero block'},
      'a gzip stream starting with a zero block is not taken for an empty tar', desc(r))

# --- 3. Japanese names ---------------------------------------------------------

JP_ZIP = {'表だよ/一覧表.txt', '表だよ/漢字.txt'}
for rel, exp in [('libarchive/test_read_format_zip_filename_cp932.zip', JP_ZIP),
                 ('libarchive/test_read_format_zip_filename_utf8_jp.zip', JP_ZIP),
                 ('libarchive/test_read_format_lha_filename_cp932.lzh', {'漢字.txt', '表.txt'}),
                 ('libarchive/test_read_format_cpio_filename_utf8_jp.cpio',
                  {'漢字.txt', '表.txt'})]:
    r = run(os.path.join(LA, rel))
    check(r.status == 'ok' and set(outs(r)) == exp and
          all('name-changed' not in o.flags for o in r.outputs),
          '%s: names decoded' % os.path.basename(rel), desc(r))
r = run(os.path.join(TIKA, 'testZipEntryNameCharsetShiftSJIS.zip'))
check(r.status == 'ok' and set(outs(r)) == {'文章1.txt', '文章2.txt'},
      'tika Shift_JIS zip names decoded', desc(r))
r = run(os.path.join(LA, 'libarchive', 'test_read_format_gtar_filename_eucjp.tar.Z'))
check(r.status == 'ok' and '漢字.txt' in outs(r), 'EUC-JP tar name decoded (tar.Z)', desc(r))
sj = 'テスト資料.txt'.encode('cp932')
r = run(data=raw_zip([(sj, sj, b'cp932', 0), (b'ok-\xc3\xa9.txt', b'ok-\xc3\xa9.txt', b'u', 0),
                      (b'\xff\xfe\xfd.txt', b'\xff\xfe\xfd.txt', b'bad', 0)]))
check(r.status == 'ok' and outs(r).get('テスト資料.txt') == b'cp932' and
      outs(r).get('ok-é.txt') == b'u' and outs(r).get('\ufffd\ufffd\ufffd.txt') == b'bad',
      'raw zip names: CP932 decoded, UTF-8 kept, undecodable bytes replaced', desc(r))

# --- 4. names made safe ----------------------------------------------------------

NAMES = [('../../etc/passwd', 'etc/passwd'),
         ('/abs/path.txt', 'abs/path.txt'),
         ('C:\\win\\evil.exe', 'win/evil.exe'),
         ('a/./b/../c.txt', 'a/b/c.txt'),
         ('x\u202etxt.exe', 'xtxt.exe'),
         ('ctl\x01\x1f\x7f\u0085name', 'ctlname'),
         ('iso\u2066late\u2069\u200f\u061c.doc', 'isolate.doc'),
         ('bom\ufeffname.txt', 'bomname.txt'),
         ('evil.exe. ', 'evil.exe'),
         ('.. /. ./x.txt', 'x.txt'),
         ('..', None),
         ('plain/日本語.txt', 'plain/日本語.txt')]
members = [(n, ('data %d' % i).encode()) for i, (n, _) in enumerate(NAMES)]
for label, blob in [('zip', py_zip(members)),
                    ('tar', py_tar(lambda t: [add_file(t, n, d) for n, d in members]))]:
    r = run(data=blob)
    got = {bytes(o.data): o for o in r.outputs}
    bad = []
    for i, (n, exp) in enumerate(NAMES):
        o = got.get(('data %d' % i).encode())
        want = exp if exp is not None else 'member-%d' % (i + 1)
        changed = exp != n
        if o is None or o.name != want or (('name-changed' in o.flags) != changed):
            bad.append((n, want, o))
    check(r.status == 'ok' and not bad, '%s: names made safe and flagged' % label,
          '%r %s' % (bad, desc(r)))
    check(all(not o.name.startswith('/') and '..' not in o.name.split('/') and
              '\\' not in o.name for o in r.outputs), '%s: no traversal left' % label, desc(r))

for rel in ['Bombs/zip-slip.zip', 'Bombs/zip-slip.tar', 'Bombs/zip-slip-win.tar']:
    r = run(os.path.join(RE, rel))
    names = [o.name for o in r.outputs]
    check(r.status == 'ok' and len(names) == 2 and 'good.txt' in names and
          all(not n.startswith('/') and '..' not in n.split('/') and '\\' not in n and
              ':' not in n for n in names) and
          any('name-changed' in o.flags for o in r.outputs),
          '%s: traversal removed and flagged' % rel, desc(r))

r = run(data=raw_zip([(b'invoice.pdf', b'invoice.exe', b'MZ', 0),
                      (b'same.txt', b'same.txt', b's', 0)]))
fl = {o.name: o.flags for o in r.outputs}
check(r.status == 'ok' and 'name-mismatch' in fl.get('invoice.pdf', []) and
      'name-mismatch' not in fl.get('same.txt', ['?']),
      'zip: local/central name mismatch flagged', desc(r))
r = run(os.path.join(CORPUS, 'corkami', 'zip', 'corkami.zip'))
check(r.status == 'ok' and len(r.outputs) == 1 and 'name-mismatch' in r.outputs[0].flags,
      'corkami.zip (empty local name) flagged name-mismatch', desc(r))

# --- 5. links and special files ---------------------------------------------------


def specials(t):
    add_file(t, 'f.txt', b'regular')
    add_special(t, 'd', tarfile.DIRTYPE)
    add_special(t, 'link', tarfile.SYMTYPE, '/etc/passwd')
    add_special(t, 'hard', tarfile.LNKTYPE, 'f.txt')
    add_special(t, 'pipe', tarfile.FIFOTYPE)
    add_special(t, 'null', tarfile.CHRTYPE)
    add_special(t, 'disk', tarfile.BLKTYPE)


r = run(data=py_tar(specials))
removed = r.notes_of('removed')
check(r.status == 'ok' and outs(r) == {'f.txt': b'regular'} and len(removed) == 5 and
      all(any("'%s'" % n in t for t in removed) for n in ['link', 'hard', 'pipe', 'null', 'disk'])
      and not any("'d'" in t for t in removed),
      'tar: symlink, hard link, FIFO, devices removed with one note each; dir silent', desc(r))
for rel, links in [('unzip/test_symlink_dotdot.zip', 2), ('unzip/test_symlink_1.zip', 3),
                   ('libarchive/test_read_format_zip_symlink.zip', 1),
                   ('libarchive/test_read_format_7zip_symbolic_name.7z', 1)]:
    r = run(os.path.join(LA, rel))
    check(r.status == 'ok' and len(r.notes_of('removed')) == links and
          all('link' not in o.name for o in r.outputs),
          '%s: symlinks not emitted, %d noted' % (os.path.basename(rel), links), desc(r))

# --- 6. encryption ---------------------------------------------------------------

ENC = [os.path.join(LA, 'libarchive', f) for f in [
    'test_read_format_zip_traditional_encryption_data.zip',
    'test_read_format_zip_winzip_aes128.zip',
    'test_read_format_zip_winzip_aes256_stored.zip', 'test_read_format_zip_encryption_header.zip',
    'test_read_format_7zip_encryption.7z', 'test_read_format_7zip_encryption_header.7z',
    'test_read_format_7zip_encryption_partially.7z', 'test_read_format_rar4_encrypted.rar',
    'test_read_format_rar4_encrypted_filenames.rar', 'test_read_format_rar5_encrypted.rar',
    'test_read_format_rar5_encrypted_filenames.rar', 'test_read_format_rar_encryption_data.rar']]
ENC += [os.path.join(LA, 'unzip', 'test_encrypted.zip')]
ENC += [os.path.join(REA, f) for f in [
    'TestDataEncrypted.7z', 'TestDataEncrypted.rar', 'TestDataEncrypted.rar4',
    'TestDataEncryptedAES.zip', 'TestDataEncryptedZipCrypto.zip', 'EncryptedWithPlainNames.7z',
    'EncryptedWithPlainNames.rar4']]
ENC += [os.path.join(TIKA, f) for f in [
    'test7Z_protected_passTika.7z', 'full_encrypted.7z', 'test-documents-enc.rar',
    'testZipEncrypted.zip']]
for p in ENC:
    r = run(p)
    check(r.status == 'encrypted' and r.reason, 'encrypted: %s' % os.path.basename(p), desc(r))

# --- 7. limits --------------------------------------------------------------------

r = run(os.path.join(REA, 'TestDataArchivesNested.zip'), max_members=3)
check(r.status == 'limit' and 'max-members' in (r.reason or '') and len(r.outputs) <= 3,
      'max-members=3 on a 15-entry zip: limit', desc(r))
r = run(os.path.join(REA, 'TestDataArchivesNested.zip'), max_members=15)
check(r.status == 'ok', 'max-members=15 on the same zip: ok', desc(r))
r = run(os.path.join(REA, 'TestData.zip'), max_total=8000)
check(r.status == 'limit' and 'max-total' in (r.reason or ''), 'max-total=8000: limit', desc(r))
zeros = py_zip([('zeros.bin', b'\0' * (4 << 20))])
r = run(data=zeros)
check(r.status == 'limit' and 'max-ratio' in (r.reason or ''),
      'a 4 MiB member of zeros (ratio ~1000): max-ratio limit', desc(r))
r = run(data=zeros, max_ratio=0)
check(r.status == 'ok' and outs(r) == {'zeros.bin': b'\0' * (4 << 20)},
      'the same with max-ratio=0: ok, byte-exact', desc(r))
r = run(data=py_zip([('small.bin', b'\0' * (512 << 10))]))
check(r.status == 'ok' and len(r.outputs) == 1 and len(r.outputs[0].data) == 512 << 10,
      'a 512 KiB member of zeros passes (ratios judged past 1 MiB)', desc(r))
r = run(data=gzip.compress(b'\0' * (8 << 20)), name='z.gz')
check(r.status == 'limit' and 'max-ratio' in (r.reason or ''),
      'bare gzip of zeros: max-ratio limit', desc(r))

# max-ratio per member and for the whole item. A member is measured
# against the input bytes read while it was read plus one 64 KiB read
# block (AR_BLOCK) of slack, the whole against the item's size
# (mgw_input_size: the zip file, its directory and comment included).
# The 4 MiB member of zeros above trips the whole-item check (4 MiB
# over 4 KB), not the member one (4 MiB over 4 KB + 64 KiB).
AR_BLOCK = 64 << 10
MEMBER_RATIO = 'max-ratio: member %r expands more than 100 times'
ITEM_RATIO = 'max-ratio: the archive expands more than 100 times'

# per member: 40 MiB of zeros (about 40 KB deflated) after 3 MiB of
# random bytes, so the item as a whole expands 14 times only
pad = random.Random(20240602).randbytes(3 << 20)
r = run(data=py_zip([('pad.bin', pad), ('zeros.bin', b'\0' * (40 << 20))]))
check(r.status == 'limit' and r.reason == MEMBER_RATIO % 'zeros.bin',
      'a 40 MiB member of zeros after 3 MiB of random bytes (the item 14:1): the member '
      'max-ratio limit', desc(r))


def runs_data(seed, size):
    """size bytes of runs of one random byte, each 256 to 4095 long: some
    450 times smaller deflated (fixed seed)."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += bytes([rng.randrange(256)]) * rng.randrange(256, 4096)
    return bytes(out[:size])


# The whole item: 16 members of 4 MiB each, every one of them deflated
# to some 9 KB. No member trips its own check: 4 MiB is less than 100
# times the 64 KiB of slack alone. Together they expand some 450 times
# the zip's size, which only the whole-item check sees. (Were every
# member at most 100:1 against its own deflated bytes, so would be the
# whole zip, which holds them all: the whole-item check exists for
# members that hide under the per-member slack.)
RUN_MEMBERS = [('r%02d.bin' % i, runs_data(3000 + i, 4 << 20)) for i in range(16)]
runs_zip = py_zip(RUN_MEMBERS)
runs_total = sum(len(d) for _, d in RUN_MEMBERS)
check(all(100 * len(zlib.compress(d)) < len(d) < 70 * AR_BLOCK for _, d in RUN_MEMBERS),
      'each 4 MiB member: over 100 times its deflated size, under 70 times 64 KiB')
r = run(data=runs_zip)
check(r.status == 'limit' and r.reason == ITEM_RATIO,
      '16 members of 4 MiB, each under the member max-ratio, the zip %d:1 in all: the '
      'whole-item max-ratio limit' % (runs_total // len(runs_zip)), desc(r))


def padded_runs_zip(comment_len):
    """RUN_MEMBERS and a stored member of random bytes (fixed seed) sized
    so that the zip with a comment of about 1000 bytes is 1/100 of what
    it expands to, a multiple of 100; the comment (comment_len bytes)
    adds to the item's size only."""
    # a stored entry adds its data and 2 * (len(name) + 38) header bytes
    name = 'padding.bin'
    fixed = len(runs_zip) + 2 * (len(name) + 38) + 1000
    n = (runs_total - 100 * fixed) // 99
    n -= (runs_total + n) % 100  # what it all expands to: a multiple of 100
    members = RUN_MEMBERS + [(name, random.Random(20240603).randbytes(n))]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for mname, data in members:
            z.writestr(zipfile.ZipInfo(mname), data,
                       compress_type=zipfile.ZIP_STORED if mname == name else
                       zipfile.ZIP_DEFLATED)
        z.comment = b'c' * comment_len
    return buf.getvalue(), dict(members)


# exactly at the limit (expanded bytes == 100 * item size): accepted; one
# byte of comment less (expanded just over 100 times): refused
blob, want = padded_runs_zip(0)
expanded = sum(len(d) for d in want.values())
at_limit = expanded // 100 - len(blob)  # comment bytes that bring the item to 1/100
check(expanded % 100 == 0 and 0 < at_limit < 65536,
      'the padded zip expands to a multiple of 100 and leaves room for a comment (%d bytes)'
      % at_limit)
blob, _ = padded_runs_zip(at_limit)
r = run(data=blob)
check(r.status == 'ok' and outs(r) == want,
      'the same 16 members and %d bytes of stored random data, %d bytes expanding to %d '
      '(%.4f:1): ok, every member byte-exact' % (
          len(want['padding.bin']), len(blob), expanded, expanded / len(blob)), desc(r))
blob, _ = padded_runs_zip(at_limit - 1)
r = run(data=blob)
check(r.status == 'limit' and r.reason == ITEM_RATIO,
      'one byte smaller (%d bytes, %.4f:1): the whole-item max-ratio limit' % (
          len(blob), expanded / len(blob)), desc(r))

# --- 8. bombs ---------------------------------------------------------------------


def timed(**kw):
    t0 = time.monotonic()
    r = run(timeout=10, **kw)
    return r, time.monotonic() - t0


def real_limit(r):
    return r.status == 'limit' and not (r.reason or '').startswith('memory')


# A 7z header that declares millions of folders: libarchive asks for
# gigabytes at once. That allocation must fail at once (worker-memory;
# in the AddressSanitizer build, which sets no RLIMIT_AS, through the
# workers' ASan defaults, src/worker/asan_options.c), not be granted and
# filled for half a minute.
r, dt = timed(path=os.path.join(LA, 'libarchive', 'test_read_format_7zip_folders_oom.7z'),
              name='oom.7z')
check(r.status == 'fail' and 'allocate memory' in (r.reason or '') and dt < 5,
      '7z declaring millions of folders: its allocation fails at once (%.2f s)' % dt, desc(r))

BOMBS = os.path.join(RE, 'Bombs')
for f in sorted(os.listdir(BOMBS)):
    if not f.startswith('10GB'):
        continue
    p = os.path.join(BOMBS, f)
    if f == '10GB.bz2':  # the bomb itself, one layer
        r, dt = timed(path=p, name=f)
        check(real_limit(r) and dt < 5, '%s: limit in %.2f s' % (f, dt), desc(r))
        continue
    r, dt = timed(path=p, name=f, max_ratio=0)
    inner = bz2.decompress(open(p, 'rb').read())
    check(r.status == 'ok' and len(r.outputs) == 1 and r.outputs[0].name == f[:-4] and
          bytes(r.outputs[0].data) == inner and dt < 5,
          '%s: the outer bz2 layer unpacks (%.2f s)' % (f, dt), desc(r))
    r, dt = timed(data=inner, name=f[:-4])
    check(real_limit(r) and dt < 5, '%s: the inner archive ends in limit in %.2f s' % (f, dt),
          desc(r))
    r, dt = timed(data=inner, name=f[:-4], max_total=10 ** 12)
    check(real_limit(r) and dt < 5,
          '%s: inner, without max-total, ends in limit in %.2f s' % (f, dt), desc(r))

r, dt = timed(data=zbsm(40, 8 << 20))
check(real_limit(r) and dt < 5 and not r.outputs,
      'overlapping-member zip (zbsm style, 320 MiB): limit in %.2f s, nothing emitted' % dt,
      desc(r))
r, dt = timed(data=dup_offset_zip(200, 2 << 20))
check(real_limit(r) and dt < 5, 'zip of 200 entries sharing one local header: limit', desc(r))

# --- 9. corrupt and not-archives ------------------------------------------------------

td = open(os.path.join(REA, 'TestData.zip'), 'rb').read()
tgz = open(os.path.join(REA, 'TestData.tar.gz'), 'rb').read()
r = run(data=td[:-30])  # local headers intact, directory cut: read as a stream
check(ok_run(r), 'zip without its end record: a clean result (%s)' % r.status, desc(r))
for label, blob in [('zip cut in half', td[:len(td) // 2]),
                    ('tar.gz cut short', tgz[:900]),
                    ('7z cut short', open(os.path.join(REA, 'TestData.7z'), 'rb').read()[:800]),
                    ('random bytes', random.Random(7).randbytes(5000))]:
    r = run(data=blob)
    check(ok_run(r) and r.status == 'fail', '%s: fail, cleanly' % label, desc(r))
for p in [os.path.join(TIKA, 'testZIP_corrupted_oom.zip'),
          os.path.join(LA, 'libarchive', 'test_read_format_zip.zip'),  # bad CRC
          os.path.join(REA, 'Lorem.txt'), os.path.join(REA, 'UdfTest.iso')]:
    r = run(p)
    check(ok_run(r) and r.status == 'fail', '%s: fail' % os.path.basename(p), desc(r))

# --- 9b. the name mismatch inside the pipeline -----------------------------------------
# The worker's flag becomes the member's "name-mismatch" flag: in the
# audit record, and for rules (here one that drops such members).


def sanitize_audit(blob, rules=None):
    tmp = tempfile.mkdtemp(prefix='mugaika-cdr-names.')
    try:
        db = os.path.join(tmp, 'db')
        subprocess.run(['bash', os.path.join(A.source, 'tests', 'av', 'make-testdb'), db],
                       check=True, stdout=subprocess.DEVNULL, timeout=120)
        m = EmailMessage()
        m['From'] = 'a@example.jp'
        m['To'] = 'b@example.lg.jp'
        m['Subject'] = 'names'
        m.set_content('body\n')
        m.add_attachment(blob, maintype='application', subtype='zip', filename='a.zip')
        eml = os.path.join(tmp, 'in.eml')
        with open(eml, 'wb') as f:
            f.write(bytes(m))
        audit = os.path.join(tmp, 'audit.json')
        cmd = [A.cli, 'sanitize', '--clamav-db', db, '--quarantine', os.path.join(tmp, 'q'),
               '--lang', 'en', '--audit', audit]
        if rules is not None:
            rdir = os.path.join(tmp, 'rules')
            shutil.copytree(os.path.join(A.source, 'rules'), rdir)
            with open(os.path.join(rdir, '05-names.rules'), 'w') as f:
                f.write(rules)
            cmd += ['--rules', rdir]
        p = subprocess.run(cmd + [eml], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        with open(audit) as f:
            rec = json.loads(f.read().splitlines()[-1])
        return p, rec
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def payloads(raw):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    return [q.get_payload(decode=True) or b'' for q in m.walk() if not q.is_multipart()]


blob = raw_zip([(b'invoice.txt', b'invoice.pdf', b'plain words\n', 0),
                (b'same.txt', b'same.txt', b'other words\n', 0)])
p, rec = sanitize_audit(blob)
flags = {q.get('filename'): q.get('flags') for q in rec['parts'] if q.get('filename')}
# libarchive reads the local header: the member is "invoice.txt"
check(p.returncode == 0 and 'name-mismatch' in (flags.get('invoice.txt') or []) and
      'same.txt' in flags and 'name-mismatch' not in (flags['same.txt'] or []) and
      flags.get('a.zip') == [],
      'pipeline: a member whose local and central names differ has the flag '
      '"name-mismatch" in the audit record', (p.returncode, flags, p.stderr[-300:]))
p, rec = sanitize_audit(blob, '[rule names-differ]\nflags = name-mismatch\naction = drop\n')
acts = {q.get('filename'): (q.get('rule'), q.get('action')) for q in rec['parts']
        if q.get('filename')}
kept = [a for a in acts.values() if a[1] == 'keep']
check(p.returncode == 0 and acts.get('invoice.txt') == ('names-differ', 'drop') and
      len(kept) == 1 and acts.get('same.txt', ('', ''))[1] == 'keep' and
      not any(b'plain words' in d for d in payloads(p.stdout)) and
      any(b'other words' in d for d in payloads(p.stdout)),
      'pipeline: a rule with flags = name-mismatch drops that member only', acts)

# --- 10. no crash, no hang on the whole archive corpus -------------------------------

sweep = []
for top in [LA, RE]:
    for d, _, files in os.walk(top):
        sweep += [os.path.join(d, f) for f in files if f != 'SOURCES.tsv']
sweep += [os.path.join(TIKA, f) for f in os.listdir(TIKA)
          if f.endswith(('.zip', '.7z', '.rar', '.tar'))]
bad = []
for p in sorted(sweep):
    r = run(p, name=os.path.basename(p))
    if not ok_run(r):
        bad.append((p, desc(r)))
check(len(sweep) > 150 and not bad, 'corpus sweep: %d archives, each exits 0 with a Z record'
      % len(sweep), bad[:5])

done()
