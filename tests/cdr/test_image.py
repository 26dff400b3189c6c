#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""cdr-image: the image handler of mugaika-worker (src/worker/image.c).

Every output is parsed again here (stdlib only) rather than trusted:
PNG chunk walk with CRCs, allowed chunks only, IDAT inflating to exactly
height*(1+rowbytes), nothing after IEND, and the pixels compared with the
input's; JPEG marker walk SOI..EOI with only one JFIF 1.01 APP0, DQT,
SOF0 (SOF1 with 16-bit tables), DHT, one sequential scan of every
component, nothing after EOI, and the entropy-coded data decoded to the
quantised coefficients: those of the coefficient path must be the
input's (generated baseline, progressive, arithmetic-coded, restart,
16-bit-table and grey JPEGs, and the small sequential ones of the
corpus), and their DC terms show the EXIF orientation and CMYK and RGB
conversion of the pixel path; GIF block walk to the trailer with every
frame LZW-decoded and compared; WebP RIFF size and a lone VP8L chunk;
TIFF IFD walk: one IFD, baseline tags only, deflate strips inflated (and
predictor 2 undone) to the pixels, every byte of the file referenced and
none after the data; hand-made TIFFs (metadata, zip after the data,
pages, alpha, orientations, grey, 16-bit, pixel bombs) and the corpus's.

Then every output the test got is given to the handler again (a JPEG
twice): the same bytes, name and type and no note must come back, so the
handler is idempotent; and every input again with MALLOC_PERTURB_ set:
the same bytes (no uninitialised memory in an output).
"""
import base64
import io
import os
import random
import re
import struct
import sys
import time
import zipfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mgw import run  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
WORKER = A.worker
BOMB_OPTS = {'as': '268435456'}
PNG_SIG = b'\x89PNG\r\n\x1a\n'
PNG_ALLOWED = {b'IHDR', b'PLTE', b'tRNS', b'IDAT', b'IEND'}
JPEG_ALLOWED = {0xD8, 0xE0, 0xDB, 0xC0, 0xC1, 0xC4, 0xDA, 0xD9}
ZIP = None


# every run that gave an output: (group, what, input, options, output), for
# test_fixed_points
PASS1 = []


def remember(r, data, opts, what=None):
    """Keep R's output (when there is exactly one) for test_fixed_points,
    grouped by the test function it comes from."""
    if r.status == 'ok' and len(r.outputs) == 1:
        f = sys._getframe(1)
        while f.f_back is not None and not f.f_code.co_name.startswith('test_'):
            f = f.f_back
        line = f.f_lineno
        PASS1.append((f.f_code.co_name[5:], what or 'line %d' % line, data, dict(opts or {}),
                      r.outputs[0]))
    return r


def image(data, opts=None):
    return remember(run(WORKER, 'image', data=data, opts=opts), data, opts)


def zip_bytes():
    global ZIP
    if ZIP is None:
        b = io.BytesIO()
        with zipfile.ZipFile(b, 'w') as z:
            z.writestr('evil.js', 'WScript.Echo("polyglot")\n' * 4)
        ZIP = b.getvalue()
    return ZIP


def finished(r):
    """Exit 0 with a Z record, a clean record stream and no sanitizer report."""
    return (r.returncode == 0 and r.status is not None and r.protocol_error is None and
            b'runtime error:' not in r.stderr and b'Sanitizer' not in r.stderr)


def one_output(r):
    if len(r.outputs) != 1:
        raise ValueError('%d outputs' % len(r.outputs))
    return bytes(r.outputs[0].data)


def removed(r):
    return ' | '.join(r.notes_of('removed'))


# ---------------------------------------------------------------- PNG


def png_chunks(data):
    """[(type, body)] up to IEND and the count of bytes after it; ValueError
    on a bad signature, a bad CRC or truncation."""
    if data[:8] != PNG_SIG:
        raise ValueError('no PNG signature')
    i, out = 8, []
    while True:
        if i + 12 > len(data):
            raise ValueError('truncated at %d' % i)
        (n,) = struct.unpack('>I', data[i:i + 4])
        t = data[i + 4:i + 8]
        body = data[i + 8:i + 8 + n]
        if i + 12 + n > len(data):
            raise ValueError('chunk %r truncated' % t)
        (crc,) = struct.unpack('>I', data[i + 8 + n:i + 12 + n])
        if zlib.crc32(t + body) != crc:
            raise ValueError('bad CRC in %r' % t)
        out.append((t, body))
        i += 12 + n
        if t == b'IEND':
            return out, len(data) - i


def png_chunk(t, body):
    return struct.pack('>I', len(body)) + t + body + struct.pack('>I', zlib.crc32(t + body))


CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def unfilter(raw, pos, w, h, bits):
    stride = (w * bits + 7) // 8
    bpp = max(1, bits // 8)
    prev = bytearray(stride)
    rows = []
    for _ in range(h):
        if pos + 1 + stride > len(raw):
            raise ValueError('not enough image data')
        f = raw[pos]
        line = bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
            elif f != 0:
                raise ValueError('filter type %d' % f)
        rows.append(line)
        prev = line
    return rows, pos


def row_pixels(row, w, depth, ch):
    if depth == 8:
        return [tuple(row[x * ch:(x + 1) * ch]) for x in range(w)]
    if depth == 16:
        return [tuple(struct.unpack('>%dH' % ch, bytes(row[x * ch * 2:(x + 1) * ch * 2])))
                for x in range(w)]
    out = []
    for x in range(w):
        bit = x * depth
        out.append(((row[bit // 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1),))
    return out


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_decode(data, strict=False):
    """(ihdr dict, pixel grid, PLTE, tRNS). strict: the output rules (only
    the allowed chunks, non-interlaced, exact IDAT size, nothing after)."""
    chunks, trailing = png_chunks(data)
    if chunks[0][0] != b'IHDR':
        raise ValueError('first chunk is %r' % chunks[0][0])
    w, h, depth, ctype, _, _, inter = struct.unpack('>IIBBBBB', chunks[0][1])
    ch = CHANNELS[ctype]
    bits = depth * ch
    plte = b''.join(b for t, b in chunks if t == b'PLTE')
    trns = b''.join(b for t, b in chunks if t == b'tRNS')
    d = zlib.decompressobj()
    raw = d.decompress(b''.join(b for t, b in chunks if t == b'IDAT'))
    if strict:
        bad = [t for t, _ in chunks if t not in PNG_ALLOWED]
        if bad:
            raise ValueError('chunks not allowed: %r' % bad)
        if trailing:
            raise ValueError('%d bytes after IEND' % trailing)
        if inter != 0:
            raise ValueError('interlaced output')
        if not d.eof or d.unused_data:
            raise ValueError('IDAT zlib stream not ended cleanly')
        want = h * (1 + (w * bits + 7) // 8)
        if len(raw) != want:
            raise ValueError('IDAT inflates to %d, not %d' % (len(raw), want))
    if inter == 0:
        rows, _ = unfilter(raw, 0, w, h, bits)
        grid = [row_pixels(r, w, depth, ch) for r in rows]
    else:
        grid = [[None] * w for _ in range(h)]
        pos = 0
        for x0, y0, dx, dy in ADAM7:
            pw = (w - x0 + dx - 1) // dx
            ph = (h - y0 + dy - 1) // dy
            if pw == 0 or ph == 0:
                continue
            rows, pos = unfilter(raw, pos, pw, ph, bits)
            for j, r in enumerate(rows):
                for i, px in enumerate(row_pixels(r, pw, depth, ch)):
                    grid[y0 + j * dy][x0 + i * dx] = px
    info = {'w': w, 'h': h, 'depth': depth, 'ctype': ctype, 'interlace': inter}
    return info, grid, plte, trns


def make_png(w, h, depth, ctype, grid, interlace=False, plte=None, trns=None, extra=()):
    """A PNG of GRID (rows of sample tuples), filter 0, optionally Adam7."""
    ch = CHANNELS[ctype]

    def pack(pixels):
        if depth == 8:
            return bytes(v for px in pixels for v in px)
        if depth == 16:
            return b''.join(struct.pack('>%dH' % ch, *px) for px in pixels)
        out = bytearray((len(pixels) * depth + 7) // 8)
        for x, px in enumerate(pixels):
            bit = x * depth
            out[bit // 8] |= px[0] << (8 - depth - bit % 8)
        return bytes(out)

    raw = b''
    if not interlace:
        raw = b''.join(b'\0' + pack(r) for r in grid)
    else:
        for x0, y0, dx, dy in ADAM7:
            for y in range(y0, h, dy):
                px = [grid[y][x] for x in range(x0, w, dx)]
                if px:
                    raw += b'\0' + pack(px)
    out = PNG_SIG + png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0,
                                                     1 if interlace else 0))
    for t, b in extra:
        out += png_chunk(t, b)
    if plte:
        out += png_chunk(b'PLTE', plte)
    if trns:
        out += png_chunk(b'tRNS', trns)
    return out + png_chunk(b'IDAT', zlib.compress(raw)) + png_chunk(b'IEND', b'')


def png_insert(data, chunks, after=b'IHDR'):
    """DATA with CHUNKS [(type, body)] inserted after the chunk AFTER."""
    i = 8
    while True:
        (n,) = struct.unpack('>I', data[i:i + 4])
        t = data[i + 4:i + 8]
        i += 12 + n
        if t == after:
            return data[:i] + b''.join(png_chunk(t2, b2) for t2, b2 in chunks) + data[i:]


def png_same(src, out):
    """Check that OUT is a clean PNG with SRC's pixels, depth and colours."""
    info, grid, plte, trns = png_decode(src)
    oinfo, ogrid, oplte, otrns = png_decode(out, strict=True)
    for k in ('w', 'h', 'depth', 'ctype'):
        if info[k] != oinfo[k]:
            raise ValueError('%s %r became %r' % (k, info[k], oinfo[k]))
    if grid != ogrid:
        raise ValueError('pixels differ')
    if info['ctype'] == 3 and (plte != oplte or trns[:len(plte) // 3] != otrns):
        raise ValueError('palette differs')
    if info['ctype'] in (0, 2) and trns != otrns:
        raise ValueError('tRNS differs')
    return True


# ---------------------------------------------------------------- GIF


def lzw_decode(min_size, data, npix):
    clear, eoi = 1 << min_size, (1 << min_size) + 1
    size = min_size + 1
    table = [bytes([i]) for i in range(clear)] + [b'', b'']
    out = bytearray()
    prev = None
    acc = nbits = pos = 0
    while len(out) < npix:
        while nbits < size:
            if pos >= len(data):
                raise ValueError('LZW data ends early')
            acc |= data[pos] << nbits
            pos += 1
            nbits += 8
        code = acc & ((1 << size) - 1)
        acc >>= size
        nbits -= size
        if code == clear:
            table = table[:eoi + 1]
            size = min_size + 1
            prev = None
            continue
        if code == eoi:
            break
        if prev is None:
            if code >= clear:
                raise ValueError('bad first code')
            entry = table[code]
        elif code < len(table):
            entry = table[code]
            if len(table) < 4096:
                table.append(prev + entry[:1])
        elif code == len(table):
            entry = prev + prev[:1]
            if len(table) < 4096:
                table.append(entry)
        else:
            raise ValueError('bad LZW code')
        out += entry
        prev = entry
        if len(table) == (1 << size) and size < 12:
            size += 1
    if len(out) < npix:
        raise ValueError('LZW gives %d of %d pixels' % (len(out), npix))
    return bytes(out[:npix])


def gif_sub_blocks(data, i):
    blocks = []
    while True:
        if i >= len(data):
            raise ValueError('sub-blocks truncated')
        n = data[i]
        i += 1
        if n == 0:
            return blocks, i
        if i + n > len(data):
            raise ValueError('sub-block truncated')
        blocks.append(data[i:i + n])
        i += n


def gif_parse(data):
    """dict: w, h, gct, bg, frames [{x,y,w,h,lct,pixels,gce}], exts
    [(label, blocks)], trailing. Pixels are de-interlaced."""
    if data[:6] not in (b'GIF87a', b'GIF89a'):
        raise ValueError('no GIF signature')
    w, h, packed, bg, _ = struct.unpack('<HHBBB', data[6:13])
    i = 13
    gct = None
    if packed & 0x80:
        n = 3 << ((packed & 7) + 1)
        gct = data[i:i + n]
        i += n
    g = {'w': w, 'h': h, 'gct': gct, 'bg': bg, 'frames': [], 'exts': []}
    gce = None
    while True:
        if i >= len(data):
            raise ValueError('no trailer')
        b = data[i]
        if b == 0x3B:
            g['trailing'] = len(data) - i - 1
            return g
        if b == 0x21:
            label = data[i + 1]
            blocks, i = gif_sub_blocks(data, i + 2)
            g['exts'].append((label, blocks))
            if label == 0xF9:
                gce = blocks[0] if blocks else None
            continue
        if b != 0x2C:
            raise ValueError('unknown block 0x%02x at %d' % (b, i))
        x, y, fw, fh, fp = struct.unpack('<HHHHB', data[i + 1:i + 10])
        i += 10
        lct = None
        if fp & 0x80:
            n = 3 << ((fp & 7) + 1)
            lct = data[i:i + n]
            i += n
        min_size = data[i]
        blocks, i = gif_sub_blocks(data, i + 1)
        px = lzw_decode(min_size, b''.join(blocks), fw * fh)
        if fp & 0x40:
            order = [r for s, st in ((0, 8), (4, 8), (2, 4), (1, 2)) for r in range(s, fh, st)]
            rows = [None] * fh
            for k, r in enumerate(order):
                rows[r] = px[k * fw:(k + 1) * fw]
            px = b''.join(rows)
        g['frames'].append({'x': x, 'y': y, 'w': fw, 'h': fh, 'lct': lct, 'pixels': px,
                            'gce': gce, 'interlaced': bool(fp & 0x40)})
        gce = None


def lzw_literal(min_size, pixels):
    """LZW data that uses literal codes only, with a clear code before the
    decoder's table would need a wider code."""
    clear = 1 << min_size
    size = min_size + 1
    run_max = (1 << min_size) - 2
    acc = nbits = 0
    out = bytearray()

    def emit(code):
        nonlocal acc, nbits
        acc |= code << nbits
        nbits += size
        while nbits >= 8:
            out.append(acc & 255)
            acc >>= 8
            nbits -= 8

    for k, p in enumerate(pixels):
        if k % run_max == 0:
            emit(clear)
        emit(p)
    emit(clear + 1)
    if nbits:
        out.append(acc & 255)
    return bytes(out)


def gif_blocks(data):
    return b''.join(bytes([len(data[k:k + 255])]) + data[k:k + 255]
                    for k in range(0, len(data), 255)) + b'\0'


def make_gif(w, h, frames, gct, loop=None, exts_before=(), trailing=b''):
    """frames: dicts x, y, w, h, pixels, lct, interlace, gce (4 bytes), exts."""
    bits = (len(gct) // 3).bit_length() - 2
    out = b'GIF89a' + struct.pack('<HHBBB', w, h, 0x80 | 0x70 | bits, 0, 0) + gct
    if loop is not None:
        out += b'\x21\xff\x0bNETSCAPE2.0\x03\x01' + struct.pack('<H', loop) + b'\0'
    for label, payload in exts_before:
        out += bytes([0x21, label]) + gif_blocks(payload)
    for f in frames:
        for label, payload in f.get('exts', ()):
            out += bytes([0x21, label]) + gif_blocks(payload)
        if f.get('gce'):
            out += b'\x21\xf9\x04' + f['gce'] + b'\0'
        lct = f.get('lct')
        packed = (0x40 if f.get('interlace') else 0)
        if lct:
            packed |= 0x80 | ((len(lct) // 3).bit_length() - 2)
        out += b'\x2c' + struct.pack('<HHHHB', f['x'], f['y'], f['w'], f['h'], packed)
        if lct:
            out += lct
        px = f['pixels']
        if f.get('interlace'):
            fw = f['w']
            order = [r for s, st in ((0, 8), (4, 8), (2, 4), (1, 2)) for r in range(s, f['h'], st)]
            px = b''.join(px[r * fw:(r + 1) * fw] for r in order)
        min_size = max(2, ((len(lct or gct) // 3) - 1).bit_length())
        out += bytes([min_size]) + gif_blocks(lzw_literal(min_size, px))
    return out + b'\x3b' + trailing


def gce_fields(gce):
    """(disposal, user input, delay, transparent index or None)."""
    if not gce:
        return None
    return ((gce[0] >> 2) & 7, gce[0] & 2, gce[1] | gce[2] << 8,
            gce[3] if gce[0] & 1 else None)


def gif_clean(out, src_parsed):
    """OUT is a clean GIF with the frames of SRC_PARSED; returns parsed OUT."""
    g = gif_parse(out)
    if g['trailing']:
        raise ValueError('%d bytes after the trailer' % g['trailing'])
    for label, blocks in g['exts']:
        if label in (0xFE, 0x01):
            raise ValueError('comment or plain text extension kept')
        if label == 0xFF and (not blocks or blocks[0] != b'NETSCAPE2.0'):
            raise ValueError('application extension %r kept' % (blocks[:1],))
        if label not in (0xF9, 0xFF):
            raise ValueError('extension 0x%02x kept' % label)
    if src_parsed is not None:
        if (g['w'], g['h'], g['gct']) != (src_parsed['w'], src_parsed['h'], src_parsed['gct']):
            raise ValueError('screen or global colour table differs')
        if len(g['frames']) != len(src_parsed['frames']):
            raise ValueError('%d frames, not %d' % (len(g['frames']), len(src_parsed['frames'])))
        for k, (a, b) in enumerate(zip(src_parsed['frames'], g['frames'])):
            for key in ('x', 'y', 'w', 'h', 'lct', 'pixels'):
                if a[key] != b[key]:
                    raise ValueError('frame %d: %s differs' % (k, key))
            if gce_fields(a['gce']) != gce_fields(b['gce']):
                raise ValueError('frame %d: graphics control %r became %r' %
                                 (k, gce_fields(a['gce']), gce_fields(b['gce'])))
    return g


# ---------------------------------------------------------------- JPEG


def jpeg_walk(data):
    """[(marker, payload, entropy-coded bytes)] from SOI to EOI and the
    count of bytes after EOI; ValueError when the structure is broken."""
    if data[:2] != b'\xff\xd8':
        raise ValueError('no SOI')
    segs = [(0xD8, b'', b'')]
    i = 2
    while True:
        if i + 2 > len(data) or data[i] != 0xFF:
            raise ValueError('no marker at %d' % i)
        m = data[i + 1]
        i += 2
        if m == 0xD9:
            segs.append((m, b'', b''))
            return segs, len(data) - i
        if 0xD0 <= m <= 0xD7:
            segs.append((m, b'', b''))
            continue
        (n,) = struct.unpack('>H', data[i:i + 2])
        if n < 2 or i + n > len(data):
            raise ValueError('segment 0x%02x truncated' % m)
        payload = data[i + 2:i + n]
        i += n
        ecs = b''
        if m == 0xDA:
            start = i
            while True:
                j = data.find(b'\xff', i)
                if j < 0 or j + 1 >= len(data):
                    raise ValueError('scan data without an end')
                if data[j + 1] == 0 or 0xD0 <= data[j + 1] <= 0xD7:
                    i = j + 2
                    continue
                i = j
                break
            ecs = data[start:i]
        segs.append((m, payload, ecs))


SOF_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_frame(data):
    """(SOF marker, precision, width, height, [(id, h, v, table)]) of the
    first frame header."""
    for m, p, _ in jpeg_walk(data)[0]:
        if m in SOF_MARKERS:
            prec, h, w, n = struct.unpack('>BHHB', p[:6])
            return m, prec, w, h, [(p[6 + 3 * c], p[7 + 3 * c] >> 4, p[7 + 3 * c] & 15,
                                    p[8 + 3 * c]) for c in range(n)]
    raise ValueError('no SOF')


def jpeg_size(data):
    return jpeg_frame(data)[2:4]


def jpeg_dqt(data):
    """{table: (16-bit, [64 values in zigzag order])}, the last definitions
    before the first scan."""
    tables = {}
    for m, p, _ in jpeg_walk(data)[0]:
        if m == 0xDA:
            break
        if m != 0xDB:
            continue
        k = 0
        while k < len(p):
            wide, tid = p[k] >> 4, p[k] & 15
            n = 128 if wide else 64
            body = p[k + 1:k + 1 + n]
            if len(body) != n:
                raise ValueError('DQT truncated')
            vals = list(struct.unpack('>64H', body)) if wide else list(body)
            tables[tid] = (wide, vals)
            k += 1 + n
    return tables


def jpeg_clean(data):
    """Raise unless DATA is SOI, one JFIF 1.01 APP0 right after it, DQT, one
    SOF0 (SOF1 when a quantisation table needs 16-bit entries), DHT, one
    sequential Huffman scan of every component, EOI, and nothing after."""
    segs, trailing = jpeg_walk(data)
    if trailing:
        raise ValueError('%d bytes after EOI' % trailing)
    bad = sorted({'%02X' % m for m, _, _ in segs if m not in JPEG_ALLOWED})
    if bad:
        raise ValueError('markers not allowed: %s' % bad)
    app0 = [p for m, p, _ in segs if m == 0xE0]
    if (len(app0) != 1 or segs[1][0] != 0xE0 or len(app0[0]) != 14 or
            not app0[0].startswith(b'JFIF\0\x01\x01') or app0[0][12:] != b'\0\0'):
        raise ValueError('APP0 is not one JFIF 1.01 segment without a thumbnail, after SOI')
    sofs = [p for m, p, _ in segs if m in SOF_MARKERS]
    wide = any(w for w, _ in jpeg_dqt(data).values())
    want = 0xC1 if wide else 0xC0
    if len(sofs) != 1 or jpeg_frame(data)[0] != want:
        raise ValueError('not one SOF%d frame' % (want - 0xC0))
    if sofs[0][0] != 8:
        raise ValueError('precision %d' % sofs[0][0])
    scans = [p for m, p, _ in segs if m == 0xDA]
    if len(scans) != 1:
        raise ValueError('%d scans, not one' % len(scans))
    ns = scans[0][0]
    if ns != sofs[0][5] or scans[0][1 + 2 * ns:] != b'\x00\x3f\x00':
        raise ValueError('the scan is not sequential with every component')
    return True


def jpeg_same_coding(src, out):
    """'' when OUT has SRC's size, components, sampling factors and
    quantisation tables (what the coefficient path copies), else why not."""
    _, _, w, h, comps = jpeg_frame(src)
    _, _, ow, oh, ocomps = jpeg_frame(out)
    if (w, h, comps) != (ow, oh, ocomps):
        raise ValueError('frame %r, input %r' % ((ow, oh, ocomps), (w, h, comps)))
    q, oq = jpeg_dqt(src), jpeg_dqt(out)
    for cid, _, _, t in comps:
        if t not in q or t not in oq or q[t][1] != oq[t][1]:
            raise ValueError('quantisation table %d of component %d differs' % (t, cid))
    return True


def ceil_div(a, b):
    return -(-a // b)


class Bits:
    def __init__(self, ecs):
        self.data = ecs.replace(b'\xff\x00', b'\xff')
        self.pos = 0

    def bit(self):
        byte = self.data[self.pos >> 3] if (self.pos >> 3) < len(self.data) else 0xFF
        b = (byte >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n):
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v


def huff_table(payload, k):
    tc_th = payload[k]
    counts = payload[k + 1:k + 17]
    vals = payload[k + 17:k + 17 + sum(counts)]
    table, code, v = {}, 0, 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            table[(length, code)] = vals[v]
            code += 1
            v += 1
        code <<= 1
    return tc_th, table, k + 17 + sum(counts)


def huff_decode(bits, table):
    code = 0
    for length in range(1, 17):
        code = (code << 1) | bits.bit()
        if (length, code) in table:
            return table[(length, code)]
    raise ValueError('bad Huffman code')


def extend(v, s):
    return v - (1 << s) + 1 if s and v < (1 << (s - 1)) else v


def component_blocks(w, h, comps, c):
    """(block columns, block rows) of the component C, without padding."""
    hmax = max(x[1] for x in comps)
    vmax = max(x[2] for x in comps)
    return (ceil_div(ceil_div(w * comps[c][1], hmax), 8),
            ceil_div(ceil_div(h * comps[c][2], vmax), 8))


def scan_order(w, h, comps, sc):
    """The blocks of one scan in coding order: [(MCU number, component
    index, block row, block column)]; SC lists the component indexes."""
    if len(sc) == 1:
        bw, bh = component_blocks(w, h, comps, sc[0])
        return [(r * bw + c, sc[0], r, c) for r in range(bh) for c in range(bw)]
    hmax = max(x[1] for x in comps)
    vmax = max(x[2] for x in comps)
    out = []
    mcus = ceil_div(w, 8 * hmax)
    for my in range(ceil_div(h, 8 * vmax)):
        for mx in range(mcus):
            for ci in sc:
                _, ch, cv, _ = comps[ci]
                for v in range(cv):
                    for u in range(ch):
                        out.append((my * mcus + mx, ci, my * cv + v, mx * ch + u))
    return out


def jpeg_coefficients(data):
    """(width, height, {component id: {(block row, block column): [64
    quantised coefficients in zigzag order]}}) of a sequential Huffman
    JPEG (any number of scans, restart markers allowed), without the
    padding blocks of the MCUs."""
    segs, _ = jpeg_walk(data)
    ht, comps, result = {}, [], {}
    w = h = dri = 0
    for m, p, ecs in segs:
        if m == 0xC4:
            k = 0
            while k < len(p):
                tc_th, table, k = huff_table(p, k)
                ht[tc_th] = table
        elif m == 0xDD:
            (dri,) = struct.unpack('>H', p[:2])
        elif m in (0xC0, 0xC1):
            _, _, w, h, comps = jpeg_frame(data)
            result = {c[0]: {} for c in comps}
        elif m in SOF_MARKERS:
            raise ValueError('not a sequential Huffman JPEG')
        elif m == 0xDA:
            ns = p[0]
            ids = [x[0] for x in comps]
            sc = [ids.index(p[1 + 2 * k]) for k in range(ns)]
            tables = {ids.index(p[1 + 2 * k]): p[2 + 2 * k] for k in range(ns)}
            parts = re.split(b'\xff[\xd0-\xd7]', ecs)
            part = 0
            bits = Bits(parts[0])
            pred = {}
            for mcu, ci, r, c in scan_order(w, h, comps, sc):
                if dri and mcu and mcu % dri == 0 and mcu // dri != part:
                    part = mcu // dri
                    bits = Bits(parts[part] if part < len(parts) else b'')
                    pred = {}
                t = tables[ci]
                s = huff_decode(bits, ht[0x00 | (t >> 4)])
                pred[ci] = pred.get(ci, 0) + extend(bits.bits(s), s)
                zz = [pred[ci]] + [0] * 63
                k = 1
                while k < 64:
                    rs = huff_decode(bits, ht[0x10 | (t & 15)])
                    if rs & 15 == 0:
                        if rs != 0xF0:
                            break
                        k += 16
                        continue
                    k += rs >> 4
                    if k > 63:
                        raise ValueError('AC run past the block')
                    zz[k] = extend(bits.bits(rs & 15), rs & 15)
                    k += 1
                bw, bh = component_blocks(w, h, comps, ci)
                if r < bh and c < bw:
                    result[comps[ci][0]][(r, c)] = zz
    return w, h, result


def jpeg_block_means(data):
    """{component id: {(block row, block col): mean sample}} from the DC
    coefficients (exact for flat blocks)."""
    w, h, coefs = jpeg_coefficients(data)
    q = jpeg_dqt(data)
    tq = {c[0]: c[3] for c in jpeg_frame(data)[4]}
    return w, h, {cid: {rc: zz[0] * q[tq[cid]][1][0] / 8 + 128 for rc, zz in blocks.items()}
                  for cid, blocks in coefs.items()}


def jpeg_same_coefficients(src, out):
    """Raise unless the sequential JPEGs SRC and OUT hold the same
    quantised coefficients in every block (so the same pixels)."""
    w, h, a = jpeg_coefficients(src)
    ow, oh, b = jpeg_coefficients(out)
    if (w, h) != (ow, oh) or a.keys() != b.keys():
        raise ValueError('different frames')
    for cid in a:
        if a[cid] != b[cid]:
            diff = [rc for rc in a[cid] if a[cid][rc] != b[cid].get(rc)]
            raise ValueError('component %d: %d blocks differ, first %r' %
                             (cid, len(diff), diff[:1]))
    return True


def seg(m, payload):
    return bytes([0xFF, m]) + struct.pack('>H', len(payload) + 2) + payload


JFIF_APP0 = seg(0xE0, b'JFIF\0\x01\x01\0\0\x01\0\x01\0\0')
# DC: categories 0..11 as 4-bit codes; AC: EOB, ZRL and every run/size
# with a size of 1 to 10, all 8-bit codes
DC_SYMBOLS = {4: list(range(12))}
AC_SYMBOLS = {8: [0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)]}


def dht(tc_th, symbols):
    counts = [len(symbols.get(n, ())) for n in range(1, 17)]
    return bytes([tc_th] + counts) + bytes(v for n in range(1, 17) for v in symbols.get(n, ()))


def huff_codes(symbols):
    codes, code = {}, 0
    for n in range(1, 17):
        for v in symbols.get(n, ()):
            codes[v] = format(code, '0%db' % n)
            code += 1
        code <<= 1
    return codes


DC_CODES, AC_CODES = huff_codes(DC_SYMBOLS), huff_codes(AC_SYMBOLS)


def magnitude(v):
    s = abs(v).bit_length()
    return s, (format(v if v > 0 else v + (1 << s) - 1, '0%db' % s) if s else '')


def entropy_bytes(bitstr):
    bitstr += '1' * (-len(bitstr) % 8)
    out = bytearray()
    for k in range(0, len(bitstr), 8):
        b = int(bitstr[k:k + 8], 2)
        out.append(b)
        if b == 0xFF:
            out.append(0)
    return bytes(out)


def code_block(zz, pred, dc=True, ss=1, se=63):
    out = []
    if dc:
        s, bits = magnitude(zz[0] - pred)
        out += [DC_CODES[s], bits]
    run = 0
    for k in range(ss, se + 1):
        if se == 0:
            break
        if zz[k] == 0:
            run += 1
            continue
        while run >= 16:
            out.append(AC_CODES[0xF0])
            run -= 16
        s, bits = magnitude(zz[k])
        out += [AC_CODES[(run << 4) | s], bits]
        run = 0
    if se and run:
        out.append(AC_CODES[0x00])
    return ''.join(out)


def make_jpeg_coefs(w, h, comps, qt, coefs, progressive=False, dri=0, extra=(), app0=True):
    """A JPEG of the given quantised coefficients: COMPS [(id, h, v,
    table)], QT {table: 64 values in zigzag order} (16-bit when one is
    over 255, and then SOF1), COEFS {id: {(block row, column): 64 values
    in zigzag order}} (absent blocks are zero). Baseline with one
    interleaved scan and restart markers every DRI MCUs, or progressive
    (spectral selection only: the DC of every component, then the AC of
    each)."""
    wide = any(v > 255 for t in qt.values() for v in t)
    out = b'\xff\xd8' + (JFIF_APP0 if app0 else b'')
    for m, payload in extra:
        out += seg(m, payload)
    for t, vals in sorted(qt.items()):
        out += seg(0xDB, bytes([0x10 | t]) + struct.pack('>64H', *vals) if wide else
                   bytes([t]) + bytes(vals))
    sof = 0xC2 if progressive else 0xC1 if wide else 0xC0
    out += seg(sof, struct.pack('>BHHB', 8, h, w, len(comps)) +
               b''.join(bytes([i, (ch << 4) | cv, t]) for i, ch, cv, t in comps))
    out += seg(0xC4, dht(0x00, DC_SYMBOLS) + dht(0x10, AC_SYMBOLS))
    if dri:
        out += seg(0xDD, struct.pack('>H', dri))
    zero = [0] * 64

    def block(ci, r, c):
        return coefs.get(comps[ci][0], {}).get((r, c), zero)

    def scan(sc, ss, se):
        head = bytes([len(sc)]) + b''.join(bytes([comps[ci][0], 0]) for ci in sc)
        pred, part = {}, []
        for _, ci, r, c in scan_order(w, h, comps, sc):
            zz = block(ci, r, c)
            part.append(code_block(zz, pred.get(ci, 0), ss == 0, max(ss, 1), se))
            pred[ci] = zz[0]
        return seg(0xDA, head + bytes([ss, se, 0])) + entropy_bytes(''.join(part))

    if progressive:
        out += scan(list(range(len(comps))), 0, 0)
        for ci in range(len(comps)):
            out += scan([ci], 1, 63)
    elif not dri:
        out += scan(list(range(len(comps))), 0, 63)
    else:
        sc = list(range(len(comps)))
        head = bytes([len(sc)]) + b''.join(bytes([comps[ci][0], 0]) for ci in sc)
        out += seg(0xDA, head + b'\x00\x3f\x00')
        pred, part, n = {}, [], 0
        for mcu, ci, r, c in scan_order(w, h, comps, sc):
            if mcu and mcu % dri == 0 and mcu // dri != n:
                out += entropy_bytes(''.join(part)) + bytes([0xFF, 0xD0 + (n & 7)])
                n, pred, part = mcu // dri, {}, []
            zz = block(ci, r, c)
            part.append(code_block(zz, pred.get(ci, 0)))
            pred[ci] = zz[0]
        out += entropy_bytes(''.join(part))
    return out + b'\xff\xd9'


def make_many_scans(al, dc=-224):
    """An 8x8 grey progressive JPEG with successive approximation: every
    coefficient band on its own, AL + 1 passes each, so 64 * (AL + 1)
    scans; the DC coefficient is DC, the rest 0."""
    out = (b'\xff\xd8' + JFIF_APP0 + seg(0xDB, b'\0' + b'\x01' * 64) +
           seg(0xC2, struct.pack('>BHHB', 8, 8, 8, 1) + b'\x01\x11\x00') +
           seg(0xC4, dht(0x00, DC_SYMBOLS) + dht(0x10, AC_SYMBOLS)))

    def sos(ss, se, ah, a):
        return seg(0xDA, bytes([1, 1, 0, ss, se, (ah << 4) | a]))

    s, bits = magnitude(dc >> al)
    out += sos(0, 0, 0, al) + entropy_bytes(DC_CODES[s] + bits)
    for k in range(1, 64):
        out += sos(k, k, 0, al) + entropy_bytes(AC_CODES[0x00])
    for a in range(al - 1, -1, -1):
        out += sos(0, 0, a + 1, a) + entropy_bytes(str((dc >> a) & 1))
        for k in range(1, 64):
            out += sos(k, k, a + 1, a) + entropy_bytes(AC_CODES[0x00])
    return out + b'\xff\xd9'


def make_jpeg(w, h, levels, adobe=False, extra=()):
    """A baseline JPEG (quantisation 1, sampling 1x1, one component per
    entry of LEVELS) whose every 8x8 block is flat: levels[c][row][col].
    EXTRA: (marker, payload) segments after APP0 (or the Adobe segment)."""
    comps = [(c + 1, 1, 1, 0) for c in range(len(levels))]
    coefs = {c + 1: {(r, col): [8 * (v - 128)] + [0] * 63 for r, row in enumerate(lv)
                     for col, v in enumerate(row)} for c, lv in enumerate(levels)}
    if adobe:
        extra = [(0xEE, b'Adobe' + struct.pack('>HHHB', 100, 0, 0, 0))] + list(extra)
    return make_jpeg_coefs(w, h, comps, {0: [1] * 64}, coefs, extra=extra, app0=not adobe)


def exif_app1(orientation, big_endian):
    e = '>' if big_endian else '<'
    tiff = (b'MM\0*' if big_endian else b'II*\0') + struct.pack(e + 'I', 8)
    tiff += struct.pack(e + 'H', 2)
    tiff += struct.pack(e + 'HHI', 0x010F, 2, 4) + b'Evl\0'            # Make
    tiff += struct.pack(e + 'HHIHH', 0x0112, 3, 1, orientation, 0)     # Orientation
    tiff += struct.pack(e + 'I', 0)
    return b'Exif\0\0' + tiff


def jpeg_insert(data, segments):
    """DATA with (marker, payload) segments inserted after SOI."""
    return data[:2] + b''.join(bytes([0xFF, m]) + struct.pack('>H', len(p) + 2) + p
                               for m, p in segments) + data[2:]


# ---------------------------------------------------------------- WebP


def webp_chunks(data):
    if data[:4] != b'RIFF' or data[8:12] != b'WEBP':
        raise ValueError('no RIFF WEBP header')
    (size,) = struct.unpack('<I', data[4:8])
    if size + 8 != len(data):
        raise ValueError('RIFF size %d + 8 is not the file size %d' % (size, len(data)))
    i, out = 12, []
    while i < len(data):
        t = data[i:i + 4]
        (n,) = struct.unpack('<I', data[i + 4:i + 8])
        if i + 8 + n > len(data):
            raise ValueError('chunk %r truncated' % t)
        out.append((t, data[i + 8:i + 8 + n]))
        i += 8 + n + (n & 1)
    return out


def webp_size(chunks):
    for t, b in chunks:
        if t == b'VP8X':
            return (int.from_bytes(b[4:7], 'little') + 1, int.from_bytes(b[7:10], 'little') + 1)
        if t == b'VP8L':
            v = int.from_bytes(b[1:5], 'little')
            return (v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1
        if t == b'VP8 ':
            w, h = struct.unpack('<HH', b[6:10])
            return w & 0x3FFF, h & 0x3FFF
    raise ValueError('no image chunk')


def webp_clean(data):
    chunks = webp_chunks(data)
    kinds = [t for t, _ in chunks]
    bad = [t for t in kinds if t not in (b'VP8 ', b'VP8L', b'VP8X', b'ALPH')]
    if bad:
        raise ValueError('chunks not allowed: %r' % bad)
    return chunks


def riff_chunk(t, body):
    return t + struct.pack('<I', len(body)) + body + (b'\0' if len(body) & 1 else b'')


# ---------------------------------------------------------------- checks


def check_output(kind, data, src):
    """Parse OUT (its format is KIND) and compare it with the input SRC
    (bytes, format found by magic). Returns an error string or ''."""
    try:
        if kind == 'png':
            if src[:8] == PNG_SIG:
                png_same(src, data)
            else:
                png_decode(data, strict=True)
        elif kind == 'jpeg':
            jpeg_clean(data)
            if jpeg_size(data) != jpeg_size(src):
                raise ValueError('size %r, input %r' % (jpeg_size(data), jpeg_size(src)))
        elif kind == 'gif':
            gif_clean(data, gif_parse(src))
        elif kind == 'webp':
            if webp_size(webp_clean(data)) != webp_size(webp_chunks_loose(src)):
                raise ValueError('size differs')
        elif kind == 'tiff':
            w, h = tiff_decode(data)[:2]
            tags = tiff_ifds(src)[0][0][1]
            size = (tags[256][2][0], tags[257][2][0])
            if 274 in tags and tags[274][2][0] >= 5:
                size = size[::-1]
            if (w, h) != size:
                raise ValueError('size %r, input %r' % ((w, h), size))
    except (ValueError, IndexError, KeyError, TypeError, struct.error, zlib.error) as e:
        return '%s: %s' % (kind, e)
    return ''


def webp_chunks_loose(data):
    """The chunks of a WebP that may have bytes after its RIFF data."""
    (size,) = struct.unpack('<I', data[4:8])
    return webp_chunks(data[:size + 8])


def sniff(h):
    if h.startswith(PNG_SIG):
        return 'png'
    if h.startswith(b'\xff\xd8\xff'):
        return 'jpeg'
    if h[:6] in (b'GIF87a', b'GIF89a'):
        return 'gif'
    if h[:4] == b'RIFF' and h[8:12] == b'WEBP':
        return 'webp'
    if h[:2] == b'BM':
        return 'bmp'
    if h[:4] in (b'II*\0', b'MM\0*'):
        return 'tiff'
    return None


TYPES = {'png': 'image/png', 'jpeg': 'image/jpeg', 'gif': 'image/gif', 'webp': 'image/webp',
         'tiff': 'image/tiff'}
OUT_KIND = {'png': 'png', 'jpeg': 'jpeg', 'gif': 'gif', 'webp': 'webp', 'bmp': 'png',
            'tiff': 'tiff'}

# corpus files that are not whole images: the mocks are magic bytes only,
# frag_decoded_* is a JPEG cut short by its message
NOT_IMAGES = ('corkami/mocks/', 'frag_decoded_1_2_1_2_1_2_1_2.bin')


def corpus_images():
    found = []
    for root, dirs, files in os.walk(CORPUS):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            with open(p, 'rb') as fh:
                kind = sniff(fh.read(16))
            if kind:
                found.append((kind, p))
    return found


def test_corpus():
    images = corpus_images()
    kinds = {k for k, _ in images}
    check({'png', 'jpeg', 'gif', 'webp', 'bmp', 'tiff'} <= kinds,
          'the corpus has PNG, JPEG, GIF, WebP, BMP and TIFF files', sorted(kinds))
    counts = {}
    for kind, p in images:
        rel = os.path.relpath(p, CORPUS)
        src = open(p, 'rb').read()
        t0 = time.time()
        r = run(WORKER, 'image', p, opts={'name': os.path.basename(p)})
        remember(r, src, {'name': os.path.basename(p)}, rel)
        ms = (time.time() - t0) * 1000
        if not check(finished(r), 'corpus %s: exit 0 with a Z record' % rel,
                     (r.returncode, r.protocol_error, r.stderr[-300:])):
            continue
        if any(n in rel for n in NOT_IMAGES):
            check(r.status == 'fail', 'corpus %s: not a whole image, refused' % rel, r.status)
            continue
        if not check(r.status == 'ok', 'corpus %s: re-encoded (%d ms)' % (rel, ms),
                     (r.status, r.reason)):
            continue
        counts[kind] = counts.get(kind, 0) + 1
        o = r.outputs[0] if len(r.outputs) == 1 else None
        ok_meta = o is not None and o.type == TYPES[OUT_KIND[kind]]
        check(ok_meta, 'corpus %s: one output of type %s' % (rel, TYPES[OUT_KIND[kind]]),
              r.outputs)
        if ok_meta:
            err = check_output(OUT_KIND[kind], bytes(o.data), src)
            check(not err, 'corpus %s: output parsed and matches the input' % rel, err)
        if ok_meta and kind == 'jpeg':
            # no corpus JPEG has an EXIF orientation or CMYK: all take the
            # coefficient path; the pure-Python decoder is slow, so the
            # coefficients are compared for the small sequential ones
            exact = jpeg_frame(src)[0] in (0xC0, 0xC1) and len(src) <= 40000
            try:
                jpeg_same_coding(src, bytes(o.data))
                if exact:
                    jpeg_same_coefficients(src, bytes(o.data))
                err = ''
            except (ValueError, IndexError, KeyError, struct.error) as e:
                err = str(e)
            check(not err, 'corpus %s: same frame and quantisation tables%s' %
                  (rel, ', same coefficients in every block' if exact else ''), err)
    check(counts.get('png', 0) >= 10 and counts.get('jpeg', 0) >= 10 and
          counts.get('gif', 0) >= 10 and counts.get('webp', 0) >= 2 and counts.get('bmp', 0) >= 2
          and counts.get('tiff', 0) >= 2, 'corpus: many images of each kind re-encoded', counts)


def corpus_file(rel):
    with open(os.path.join(CORPUS, rel), 'rb') as fh:
        return fh.read()


def test_png():
    src = corpus_file('python-email/python.png')
    poly = png_insert(src, [(b'tEXt', b'Comment\0<script>alert(1)</script>'),
                            (b'eXIf', exif_app1(1, True)[6:]),
                            (b'zTXt', b'Title\0\0' + zlib.compress(b'hidden words')),
                            (b'iCCP', b'icc\0\0' + zlib.compress(b'\0' * 128)),
                            (b'prVt', b'private ancillary data')])
    poly += zip_bytes()
    r = image(poly, {'name': 'logo.png'})
    check(finished(r) and r.status == 'ok', 'PNG polyglot: re-encoded', (r.status, r.reason))
    if r.status == 'ok':
        out = one_output(r)
        err = check_output('png', out, poly)
        check(not err, 'PNG polyglot: clean PNG, same pixels', err)
        check(b'<script>' not in out and b'PK\x03\x04' not in out and b'hidden' not in out,
              'PNG polyglot: no text, no zip in the output')
        check(r.outputs[0].name == 'logo.png' and r.outputs[0].type == 'image/png',
              'PNG polyglot: name and type kept', r.outputs)
        rm = removed(r)
        check('4 text chunks' in rm and 'EXIF' in rm and 'ICC' in rm and 'prVt' in rm and
              '%d bytes after the end' % len(zip_bytes()) in rm,
              'PNG polyglot: the notes name what was removed', rm)

    # generated images: depths, colour types, palette + tRNS, interlacing
    rnd = random.Random(7)
    cases = []
    for depth, ctype in ((1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (8, 4),
                         (16, 6), (8, 6), (1, 3), (4, 3), (8, 3)):
        for interlace in (False, True):
            w, h = 13, 11
            ch = CHANNELS[ctype]
            top = (1 << depth) - 1 if ctype != 3 else min((1 << depth) - 1, 9)
            grid = [[tuple(rnd.randint(0, top) for _ in range(ch)) for _ in range(w)]
                    for _ in range(h)]
            plte = trns = None
            if ctype == 3:
                plte = bytes(rnd.randrange(256) for _ in range(3 * (top + 1)))
                trns = bytes([0, 128, 255])[:top + 1]
            elif ctype == 0 and depth == 8:
                trns = struct.pack('>H', 7)
            elif ctype == 2 and depth == 16:
                trns = struct.pack('>HHH', 1, 2, 3)
            cases.append(('depth %d colour type %d%s' % (depth, ctype,
                                                         ' interlaced' if interlace else ''),
                          make_png(w, h, depth, ctype, grid, interlace, plte, trns,
                                   extra=[(b'tEXt', b'k\0v'), (b'gAMA', b'\0\0\xb1\x8f')])))
    bad = []
    for what, data in cases:
        r = image(data)
        if r.status != 'ok':
            bad.append('%s: %s %s' % (what, r.status, r.reason))
            continue
        err = check_output('png', one_output(r), data)
        if err:
            bad.append('%s: %s' % (what, err))
    check(not bad, 'PNG: %d generated images (every depth and colour type, palette, tRNS, '
          'Adam7) keep their exact pixels' % len(cases), bad)

    # the unused bits after the last pixel of a 1-bit row are cleared
    data = (PNG_SIG + png_chunk(b'IHDR', struct.pack('>IIBBBBB', 3, 2, 1, 0, 0, 0, 0)) +
            png_chunk(b'IDAT', zlib.compress(b'\0\xff\0\xbf')) + png_chunk(b'IEND', b''))
    r = image(data)
    try:
        chunks, _ = png_chunks(one_output(r))
        rows, _ = unfilter(zlib.decompress(b''.join(b for t, b in chunks if t == b'IDAT')), 0,
                           3, 2, 1)
        padding = [row[0] & 0x1F for row in rows]
    except (ValueError, zlib.error) as e:
        padding = str(e)
    check(r.status == 'ok' and padding == [0, 0] and not check_output('png', one_output(r), data),
          'PNG: the padding bits of a 1-bit row are cleared, the pixels kept', padding)

    # a palette index past PLTE stays as it was
    data = make_png(4, 1, 8, 3, [[(0,), (1,), (5,), (1,)]], plte=b'\xff\0\0\0\xff\0')
    r = image(data)
    check(r.status == 'ok' and not check_output('png', one_output(r), data),
          'PNG: an index past the palette does not fail', (r.status, r.reason))

    # an APNG keeps its default image only
    apng = png_insert(src, [(b'acTL', struct.pack('>II', 2, 0)),
                            (b'fcTL', struct.pack('>IIIIIHHBB', 0, 1, 1, 0, 0, 1, 1, 0, 0))])
    apng = png_insert(apng, [(b'fcTL', struct.pack('>IIIIIHHBB', 1, 1, 1, 0, 0, 1, 1, 0, 0)),
                             (b'fdAT', struct.pack('>I', 2) + zlib.compress(b'\0\0\0\0'))],
                      after=b'IDAT')
    r = image(apng)
    check(r.status == 'ok' and not check_output('png', one_output(r), apng) and
          'APNG' in removed(r), 'PNG: APNG frames dropped, default image kept',
          (r.status, r.reason, r.notes))

    # broken PNGs fail
    r = image(src[:len(src) * 6 // 10])
    check(finished(r) and r.status == 'fail', 'PNG truncated: fail', (r.status, r.reason))
    k = src.index(b'IDAT')
    corrupt = src[:k + 6] + bytes([src[k + 6] ^ 0x55]) + src[k + 7:]
    r = image(corrupt)
    check(finished(r) and r.status == 'fail', 'PNG with a bad IDAT CRC: fail',
          (r.status, r.reason))
    r = image(png_insert(src, [(b'ZZZZ', b'unknown critical')]))
    check(finished(r) and r.status == 'fail', 'PNG with an unknown critical chunk: fail',
          (r.status, r.reason))
    short_idat = (PNG_SIG + png_chunk(b'IHDR', struct.pack('>IIBBBBB', 8, 8, 8, 2, 0, 0, 0)) +
                  png_chunk(b'IDAT', zlib.compress(b'\0' + b'\1\2\3' * 8)) +
                  png_chunk(b'IEND', b''))
    r = image(short_idat)
    check(finished(r) and r.status == 'fail', 'PNG with too little image data: fail',
          (r.status, r.reason))


# ARITH_SOURCE() coded with arithmetic coding instead of Huffman coding (made
# once with jpegtran -arithmetic -copy none of libjpeg-turbo 2.1.5): no
# stdlib-only way to write one here
ARITH_JPEG = base64.b64decode(
    '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC'
    'AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgL/2wBDAQMDAwMDAwMDAwMDAwMDAwMDAwMD'
    'AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwP/yQARCAAQABADASIA'
    'AhEBAxEB/8wACgAQEAUBEBEF/9oADAMBAAIRAxEAPwD/AJtR5z2oJW0vfx1+e7qx8CCn79TVVc9g'
    'et5enXURcqmiTuBuG8noZ8Wm1mizdHZIo3Lk69+izVWUCcLgumi5U1Xuju34HJkDfLR8+tU3iCfE'
    'ByhRE8KPok3hJ3iQQV5+k/lDNLl4DGlKN+Rtay5XLZ7ak1T0EQO4ck6SZpy5hsfq2x6S5BCEcxF/'
    'h+n8X4rsav/Z')


def arith_source():
    rnd = random.Random(31)
    comps = [(1, 2, 2, 0), (2, 1, 1, 1), (3, 1, 1, 1)]
    coefs = {}
    for ci, (cid, _, _, _) in enumerate(comps):
        bw, bh = component_blocks(16, 16, comps, ci)
        coefs[cid] = {(r, c): [rnd.randint(-60, 60)] +
                      [rnd.choice((0, 0, 0, 0, -3, 2, 5)) for _ in range(63)]
                      for r in range(bh) for c in range(bw)}
    return make_jpeg_coefs(16, 16, comps, {0: [2] * 64, 1: [3] * 64}, coefs)


def random_coefs(rnd, w, h, comps, dc=300, ac=600):
    """Random coefficients for every block of every component (sparse AC)."""
    coefs = {}
    for ci, (cid, _, _, _) in enumerate(comps):
        bw, bh = component_blocks(w, h, comps, ci)
        coefs[cid] = {}
        for r in range(bh):
            for c in range(bw):
                zz = [rnd.randint(-dc, dc)] + [0] * 63
                for _ in range(rnd.randint(0, 12)):
                    zz[rnd.randint(1, 63)] = rnd.choice((-1, 1)) * rnd.randint(1, ac)
                coefs[cid][(r, c)] = zz
    return coefs


def jpeg_checks(what, r, src, ref=None):
    """Checks an output of the coefficient path: clean, one sequential
    Huffman scan, SRC's frame and quantisation tables, and (REF, a
    sequential Huffman JPEG, given) REF's coefficients. Returns it or None."""
    if not check(finished(r) and r.status == 'ok' and len(r.outputs) == 1,
                 '%s: re-encoded' % what, (r.status, r.reason)):
        return None
    out = one_output(r)
    try:
        jpeg_clean(out)
        jpeg_same_coding(src, out)
        if ref is not None:
            jpeg_same_coefficients(ref, out)
        err = ''
    except (ValueError, IndexError, KeyError, struct.error) as e:
        err = str(e)
    check(not err, '%s: SOI APP0 DQT SOF%d DHT SOS EOI, one sequential Huffman scan, the '
          'same frame and quantisation tables%s' %
          (what, 1 if any(w for w, _ in jpeg_dqt(src).values()) else 0,
           ', the same coefficients in every block' if ref is not None else ''), err)
    return out


def test_jpeg():
    src = corpus_file('jpmobile/email-fixtures/photo.jpg')
    poly = jpeg_insert(src, [(0xE1, exif_app1(1, False)),
                             (0xE1, b'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>'),
                             (0xFE, b'<?php system($_GET["c"]); ?>'),
                             (0xED, b'Photoshop 3.0\0' + b'8BIM' + b'\0' * 20)])
    poly += zip_bytes()
    r = image(poly, {'name': 'photo.jpeg'})
    out = jpeg_checks('JPEG polyglot', r, src, src)
    if out is not None:
        check(b'<?php' not in out and b'PK\x03\x04' not in out and b'Exif' not in out,
              'JPEG polyglot: no comment, EXIF or zip in the output')
        check(r.outputs[0].name == 'photo.jpeg' and r.outputs[0].type == 'image/jpeg',
              'JPEG polyglot: name and type kept', r.outputs)
        rm = removed(r)
        check('EXIF' in rm and 'XMP' in rm and 'ICC' in rm and '1 comment' in rm and
              'IPTC' in rm and '%d bytes after the end' % len(zip_bytes()) in rm,
              'JPEG polyglot: the notes name what was removed', rm)
        check(not r.notes_of('info') and not r.notes_of('converted'),
              'JPEG polyglot: orientation 1, nothing turned or converted', r.notes)

    # EXIF orientation: a 16x24 grey image of six flat 8x8 blocks, each a
    # different level, decoded back block by block. 1 takes the coefficient
    # path (the same coefficients); 2 to 8 the pixel path (turned, encoded
    # at quality=), whose output, given again, must come out of the
    # coefficient path unchanged (quality=30 there would change it otherwise)
    levels = [[20, 60], [100, 140], [180, 220]]

    def fliph(g):
        return [r[::-1] for r in g]

    def rot_cw(g):
        return [list(r) for r in zip(*g[::-1])]

    def rot_ccw(g):
        return [list(r) for r in zip(*g)][::-1]

    want = {1: levels, 2: fliph(levels), 3: rot_cw(rot_cw(levels)), 4: levels[::-1],
            5: rot_ccw(fliph(levels)), 6: rot_cw(levels), 7: rot_cw(fliph(levels)),
            8: rot_ccw(levels)}
    for o in range(1, 9):
        data = make_jpeg(16, 24, [levels], extra=[(0xE1, exif_app1(o, o % 2 == 0))])
        r = image(data)
        if not check(r.status == 'ok', 'JPEG orientation %d: re-encoded' % o,
                     (r.status, r.reason)):
            continue
        out = one_output(r)
        try:
            jpeg_clean(out)
            w, h, res = jpeg_block_means(out)
            got = [[round(res[1][(by, bx)]) for bx in range((w + 7) // 8)]
                   for by in range((h + 7) // 8)]
            if o == 1:
                jpeg_same_coding(data, out)
                jpeg_same_coefficients(data, out)
            err = ''
        except (ValueError, KeyError, IndexError) as e:
            w = h = 0
            got, err = None, str(e)
        size_ok = (w, h) == ((24, 16) if o >= 5 else (16, 24))
        near = got is not None and len(got) == len(want[o]) and all(
            abs(a - b) <= (0 if o == 1 else 4) for ra, rb in zip(got, want[o])
            for a, b in zip(ra, rb))
        check(size_ok and near and not err, 'JPEG orientation %d: %s, %s' %
              (o, 'width and height swapped' if o >= 5 else 'same size',
               'the same coefficients' if o == 1 else 'pixels turned the right way'),
              (w, h, got, want[o], err))
        if o == 1:
            check(not r.notes_of('info'), 'JPEG orientation 1: nothing applied', r.notes)
            continue
        check(any('orientation %d' % o in n for n in r.notes_of('info')),
              'JPEG orientation %d: noted' % o, r.notes)
        r2 = run(WORKER, 'image', data=out, opts={'quality': '30'})
        check(finished(r2) and r2.status == 'ok' and len(r2.outputs) == 1 and
              bytes(r2.outputs[0].data) == out and not r2.notes,
              'JPEG orientation %d: the turned output given again (quality=30) comes out '
              'byte for byte the same, nothing noted' % o, (r2.status, r2.notes))

    # CMYK (Adobe, inverted) and RGB (Adobe transform 0) take the pixel path
    # and become YCbCr
    def ycc_rgb(y, cb, cr):
        return (y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                y + 1.772 * (cb - 128))

    cmyk = make_jpeg(16, 16, [[[200] * 2] * 2, [[100] * 2] * 2, [[50] * 2] * 2,
                              [[220] * 2] * 2], adobe=True)
    rgb = make_jpeg(16, 16, [[[200] * 2] * 2, [[100] * 2] * 2, [[50] * 2] * 2], adobe=True)
    for what, data, expect in (('CMYK', cmyk, (200 * 220 / 255, 100 * 220 / 255, 50 * 220 / 255)),
                               ('RGB', rgb, (200, 100, 50))):
        r = image(data)
        if not check(r.status == 'ok', 'JPEG %s: re-encoded' % what, (r.status, r.reason)):
            continue
        if what == 'CMYK':
            check(any('CMYK' in n for n in r.notes_of('converted')), 'JPEG CMYK: noted', r.notes)
        out = one_output(r)
        try:
            jpeg_clean(out)
            _, _, res = jpeg_block_means(out)
            got = ycc_rgb(res[1][(0, 0)], res[2][(0, 0)], res[3][(0, 0)])
        except (ValueError, KeyError, IndexError) as e:
            got = str(e)
        check(not isinstance(got, str) and all(abs(a - b) <= 8 for a, b in zip(got, expect)),
              'JPEG %s: YCbCr output, colour kept' % what, (got, expect))

    # quality= sets the quantisation of the pixel path only
    turned = make_jpeg(16, 24, [levels], extra=[(0xE1, exif_app1(6, False))])
    q = {}
    for quality in ('30', '95'):
        r = image(turned, {'quality': quality})
        if r.status == 'ok':
            q[quality] = jpeg_dqt(one_output(r))[0][1]
    check(len(q) == 2 and q['30'] > q['95'], 'JPEG quality= sets the quantisation of a turned '
          'picture', q)
    r1, r2 = image(src), image(src, {'quality': '30'})
    check(r1.status == r2.status == 'ok' and one_output(r1) == one_output(r2),
          'JPEG quality= does not change the coefficient path', (r1.status, r2.status))

    # progressive, arithmetic, restart markers, 16-bit tables, grey: the
    # coefficients come out unchanged in one sequential Huffman scan
    prog = corpus_file('mimekit/tnef/christmas/kitten-playing-with-a-christmas-tree.jpg')
    jpeg_checks('JPEG progressive (corpus, 10 scans)', image(prog), prog)
    rnd = random.Random(41)
    comps = [(1, 2, 2, 0), (2, 1, 1, 1), (3, 1, 1, 1)]
    qt = {0: [rnd.randint(1, 40) for _ in range(64)], 1: [rnd.randint(1, 60) for _ in range(64)]}
    coefs = random_coefs(rnd, 37, 21, comps)
    base = make_jpeg_coefs(37, 21, comps, qt, coefs)
    jpeg_checks('JPEG baseline 37x21 4:2:0', image(base), base, base)
    prog = make_jpeg_coefs(37, 21, comps, qt, coefs, progressive=True)
    jpeg_checks('JPEG progressive 37x21 (4 scans)', image(prog), prog, base)
    rst = make_jpeg_coefs(37, 21, comps, qt, coefs, dri=2)
    jpeg_checks('JPEG with restart markers', image(rst), rst, rst)
    check(jpeg_dqt(ARITH_JPEG) == jpeg_dqt(arith_source()) and
          jpeg_frame(ARITH_JPEG)[0] == 0xC9, 'JPEG arithmetic: the fixture is SOF9 with the '
          'tables of its source')
    jpeg_checks('JPEG arithmetic-coded', image(ARITH_JPEG), ARITH_JPEG, arith_source())
    wide = {0: [rnd.randint(200, 900) for _ in range(64)],
            1: [rnd.randint(1, 60) for _ in range(64)]}
    coefs = random_coefs(rnd, 24, 16, comps, 3, 3)
    data = make_jpeg_coefs(24, 16, comps, wide, coefs)
    out = jpeg_checks('JPEG with 16-bit quantisation tables (SOF1)', image(data), data, data)
    check(out is not None and jpeg_frame(out)[0] == 0xC1 and jpeg_dqt(out)[0][0] == 1,
          'JPEG with 16-bit quantisation tables: SOF1 and a 16-bit DQT',
          out and (jpeg_frame(out)[0], jpeg_dqt(out)))
    grey = [(1, 1, 1, 0)]
    data = make_jpeg_coefs(29, 19, grey, {0: qt[0]}, random_coefs(rnd, 29, 19, grey))
    jpeg_checks('JPEG grey', image(data), data, data)
    k = data.index(b'\xff\xc0')
    twelve = data[:k + 4] + b'\x0c' + data[k + 5:]
    r = image(twelve)
    check(finished(r) and r.status == 'fail' and 'precision' in (r.reason or ''),
          'JPEG with 12-bit samples: fail (libjpeg-turbo here reads 8-bit only)',
          (r.status, r.reason))

    # the limits hold on the coefficient path
    many = make_many_scans(3)
    out = jpeg_checks('JPEG with 256 scans (successive approximation)', image(many), many)
    if out is not None:
        check(jpeg_block_means(out)[2] == {1: {(0, 0): 100.0}},
              'JPEG with 256 scans: the refined DC coefficient is kept')
    r = image(make_many_scans(4))
    check(finished(r) and r.status == 'limit' and 'scans' in (r.reason or ''),
          'JPEG with 320 scans: limit (at most 256)', (r.status, r.reason))
    r = image(src, {'max-pixels': str(48 * 64 - 1)})
    check(finished(r) and r.status == 'limit', 'JPEG 48x64 with max-pixels=3071: limit',
          (r.status, r.reason))
    r = image(src, {'max-pixels': str(48 * 64)})
    check(r.status == 'ok', 'JPEG 48x64 with max-pixels=3072: ok', (r.status, r.reason))

    # broken JPEGs fail (a libjpeg warning fails the item)
    r = image(src[:len(src) // 2])
    check(finished(r) and r.status == 'fail', 'JPEG truncated: fail', (r.status, r.reason))
    r = image(src[:300])
    check(finished(r) and r.status == 'fail', 'JPEG cut in its header: fail',
          (r.status, r.reason))
    k = src.index(b'\xff\xda')
    junk = src[:k] + b'\x00\x01\x02' + src[k:]
    r = image(junk)
    check(finished(r) and r.status == 'fail', 'JPEG with bytes between markers: fail',
          (r.status, r.reason))


def test_gif():
    gct = bytes(range(48))  # 16 colours
    rnd = random.Random(11)
    f1 = {'x': 0, 'y': 0, 'w': 10, 'h': 9, 'pixels': bytes(rnd.randrange(16) for _ in range(90)),
          'gce': bytes([0x04 | 0x01, 10, 0, 3]),
          'exts': [(0xFE, b'frame comment <script>'), (0x01, b'\x00' * 12 + b'plain text')]}
    f2 = {'x': 2, 'y': 3, 'w': 7, 'h': 5, 'pixels': bytes(rnd.randrange(4) for _ in range(35)),
          'lct': bytes(range(100, 112)), 'interlace': True, 'gce': bytes([0x08, 20, 0, 0])}
    f3 = {'x': 1, 'y': 1, 'w': 8, 'h': 17, 'pixels': bytes(rnd.randrange(16) for _ in range(136)),
          'interlace': True}
    anim = make_gif(10, 20, [f1, f2, f3], gct, loop=0,
                    exts_before=[(0xFE, b'a comment'), (0xFF, b'XMP DataXMP<x:xmpmeta/>')],
                    trailing=b'<script>alert(1)</script>' + zip_bytes())
    src = gif_parse(anim)
    check(len(src['frames']) == 3 and src['frames'][2]['pixels'] == f3['pixels'],
          'GIF generator and parser agree (interlaced frame de-interlaced)')
    r = image(anim, {'name': 'anim.gif'})
    if check(finished(r) and r.status == 'ok', 'GIF animated polyglot: re-encoded',
             (r.status, r.reason)):
        out = one_output(r)
        try:
            g = gif_clean(out, src)
            loops = [b for label, b in g['exts'] if label == 0xFF]
            err = '' if loops == [[b'NETSCAPE2.0', b'\x01\x00\x00']] else 'loop: %r' % loops
        except ValueError as e:
            err = str(e)
        check(not err, 'GIF animated polyglot: 3 frames with the same pixels, colour tables, '
              'delays and disposal; NETSCAPE loop kept; nothing else', err)
        check(b'<script>' not in out and b'PK\x03\x04' not in out and b'XMP' not in out,
              'GIF animated polyglot: no comment, XMP or trailing data in the output')
        rm = removed(r)
        check('2 comments' in rm and '1 plain text' in rm and 'XMP' in rm and
              '%d bytes after the end' % (len(zip_bytes()) + 25) in rm,
              'GIF animated polyglot: the notes name what was removed', rm)
        check(r.outputs[0].type == 'image/gif' and r.outputs[0].name == 'anim.gif',
              'GIF animated polyglot: name and type', r.outputs)
    r = image(anim, {'max-frames': '2'})
    check(finished(r) and r.status == 'limit', 'GIF max-frames=2 with 3 frames: limit',
          (r.status, r.reason))

    base = corpus_file('python-email/python.gif')
    poly = base[:-1] + b'\x21\xfe' + gif_blocks(b'comment at the end') + b'\x3b' + b'trailing'
    r = image(poly)
    check(r.status == 'ok' and not check_output('gif', one_output(r), poly) and
          '1 comment' in removed(r) and '8 bytes after' in removed(r),
          'GIF with a comment and trailing data: clean output', (r.status, r.reason, r.notes))

    r = image(base[:len(base) // 2])
    check(finished(r) and r.status == 'fail', 'GIF truncated: fail', (r.status, r.reason))
    r = image(base[:-1] + b'\x99\x3b')
    check(finished(r) and r.status == 'fail', 'GIF with an unknown block: fail',
          (r.status, r.reason))
    r = image(b'GIF89a\x02\x00\x02\x00\x00\x00\x00\x3b')
    check(finished(r) and r.status == 'fail', 'GIF without a frame: fail', (r.status, r.reason))


def make_bmp(w, h, bpp, rows, palette=None, masks=None, header=40, top_down=False, comp=None):
    """A BMP from ROWS (top row first) of raw pixel bytes per row (already
    packed for BPP, without padding)."""
    stride = (w * bpp + 31) // 32 * 4
    data = b''.join(r + b'\0' * (stride - len(r)) for r in (rows if top_down else rows[::-1]))
    if comp is None:
        comp = 3 if masks else 0
    dib = struct.pack('<IiiHHIIiiII', header, w, -h if top_down else h, 1, bpp, comp, len(data),
                      2835, 2835, len(palette) // 4 if palette else 0, 0)
    extra = b''
    if masks:
        m = struct.pack('<III', *masks[:3])
        if header >= 56:
            m += struct.pack('<I', masks[3] if len(masks) > 3 else 0)
        if header == 40:
            extra = m
        else:
            dib += m
    dib += b'\0' * (header - len(dib))
    pal = palette or b''
    off = 14 + header + len(extra) + len(pal)
    return b'BM' + struct.pack('<IHHI', off + len(data), 0, 0, off) + dib + extra + pal + data


def test_bmp():
    cases = []
    # 24-bit, bottom-up: expected RGB
    px = [[(x * 40, y * 80, 200) for x in range(5)] for y in range(3)]
    rows = [bytes(v for p in r for v in p[::-1]) for r in px]
    cases.append(('24-bit', make_bmp(5, 3, 24, rows), px))
    # 8-bit palette, top-down
    pal = bytes(v for i in range(4) for v in (i * 10, i * 20, i * 30, 0))
    idx = [[(x + y) % 4 for x in range(7)] for y in range(2)]
    cases.append(('8-bit palette top-down',
                  make_bmp(7, 2, 8, [bytes(r) for r in idx], palette=pal, top_down=True),
                  [[(i * 30, i * 20, i * 10) for i in r] for r in idx]))
    # 1-bit and 4-bit palettes
    pal2 = b'\0\0\0\0\xff\xff\xff\0'
    bits = [[(x * 7 + y) % 2 for x in range(9)] for y in range(2)]
    packed = [bytes(int(''.join(map(str, (r + [0] * 7)[k:k + 8])), 2) for k in range(0, 9, 8))
              for r in bits]
    cases.append(('1-bit palette', make_bmp(9, 2, 1, packed, palette=pal2),
                  [[(255, 255, 255) if b else (0, 0, 0) for b in r] for r in bits]))
    pal16 = bytes(v for i in range(16) for v in (i, i * 2, i * 3, 0))
    nib = [[(x + 3 * y) % 16 for x in range(3)] for y in range(3)]
    packed = [bytes(((r + [0])[k] << 4) | (r + [0])[k + 1] for k in range(0, 3, 2)) for r in nib]
    cases.append(('4-bit palette', make_bmp(3, 3, 4, packed, palette=pal16),
                  [[(i * 3, i * 2, i) for i in r] for r in nib]))
    # 16-bit 565 bit fields (40-byte header with masks after it)
    v565 = [[(31 << 11) | (x << 5) | y for x in range(4)] for y in range(2)]
    cases.append(('16-bit 565', make_bmp(4, 2, 16, [b''.join(struct.pack('<H', v) for v in r)
                                                     for r in v565],
                                         masks=(0xF800, 0x07E0, 0x001F)),
                  [[(255, round(x * 255 / 63), round(y * 255 / 31)) for x in range(4)]
                   for y in range(2)]))
    # 32-bit BGRA bit fields with alpha (V5 header)
    px4 = [[(x * 60, y * 90, 7, 255 - x * 50) for x in range(3)] for y in range(2)]
    rows = [bytes(v for p in r for v in (p[2], p[1], p[0], p[3])) for r in px4]
    cases.append(('32-bit with alpha (V5)',
                  make_bmp(3, 2, 32, rows, masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000),
                           header=124), px4))
    for what, data, want in cases:
        r = image(data + b'TRAILER', {'name': 'picture.bmp'})
        if not check(r.status == 'ok', 'BMP %s: converted' % what, (r.status, r.reason)):
            continue
        o = r.outputs[0]
        try:
            info, grid, plte, trns = png_decode(bytes(o.data), strict=True)
            if info['ctype'] == 3:
                grid = [[tuple(plte[3 * p[0]:3 * p[0] + 3]) for p in row] for row in grid]
            err = '' if grid == want else 'pixels %r, want %r' % (grid, want)
        except ValueError as e:
            err = str(e)
        check(not err, 'BMP %s: clean PNG with the right pixels' % what, err)
        check(o.name == 'picture.png' and o.type == 'image/png' and
              any('BMP' in n for n in r.notes_of('converted')) and '7 bytes after' in removed(r),
              'BMP %s: named .png, typed image/png, conversion noted' % what, (o, r.notes))
    rle = make_bmp(4, 1, 8, [b'\0\1\2\3'], palette=pal, comp=1)
    r = image(rle)
    check(finished(r) and r.status == 'fail', 'BMP RLE: fail (unsupported)', (r.status, r.reason))
    r = image(cases[0][1][:-10])
    check(finished(r) and r.status == 'fail', 'BMP truncated: fail', (r.status, r.reason))


def vp8l_alpha(chunks):
    """The alpha_is_used bit of the only (VP8L) chunk, or None."""
    if [t for t, _ in chunks] != [b'VP8L'] or chunks[0][1][:1] != b'\x2f':
        return None
    return bool(int.from_bytes(chunks[0][1][1:5], 'little') >> 28 & 1)


def test_webp():
    # lossy becomes lossless (a lossy encoder would change the picture on
    # every pass); lossless stays lossless; alpha is kept
    lossy = corpus_file('corkami/mini/webp.webp')
    lossless = corpus_file('corkami/mini/webpl.webp')
    alpha = corpus_file('python-email/python.webp')
    for what, src, has_alpha in (('lossy', lossy, False), ('lossless', lossless, False),
                                 ('lossy with ALPH', alpha, True)):
        r = image(src, {'name': 'pic.webp'})
        ok = r.status == 'ok' and len(r.outputs) == 1
        err = check_output('webp', one_output(r), src) if ok else r.reason
        got = vp8l_alpha(webp_chunks(one_output(r))) if ok and not err else None
        check(ok and not err and got == has_alpha, 'WebP %s: one VP8L chunk (lossless)%s, '
              'same size' % (what, ' with alpha' if has_alpha else ''), (err, got))
        conv = r.notes_of('converted')
        check(ok and r.outputs[0].name == 'pic.webp' and r.outputs[0].type == 'image/webp' and
              (any('lossless' in n for n in conv) if what != 'lossless' else not conv),
              'WebP %s: name and type kept, %s' %
              (what, 'converted to lossless noted' if what != 'lossless' else 'nothing converted'),
              (r.outputs, r.notes))
    # lossy bitstream in an extended container with metadata, and a zip after
    w, h = webp_size(webp_chunks(lossy))
    vp8 = webp_chunks(lossy)[0][1]
    body = (riff_chunk(b'VP8X', bytes([0x20 | 0x08 | 0x04, 0, 0, 0]) +
                       (w - 1).to_bytes(3, 'little') + (h - 1).to_bytes(3, 'little')) +
            riff_chunk(b'ICCP', b'\0' * 40) + riff_chunk(b'VP8 ', vp8) +
            riff_chunk(b'EXIF', exif_app1(6, True)[6:]) + riff_chunk(b'XMP ', b'<x:xmpmeta/>'))
    poly = b'RIFF' + struct.pack('<I', len(body) + 4) + b'WEBP' + body + zip_bytes()
    r = image(poly, {'name': 'x.webp'})
    if check(r.status == 'ok', 'WebP polyglot: re-encoded', (r.status, r.reason)):
        out = one_output(r)
        err = check_output('webp', out, poly)
        check(not err and b'PK\x03\x04' not in out and vp8l_alpha(webp_chunks(out)) is False,
              'WebP polyglot: RIFF size is the file size, only VP8L, same size', err)
        rm = removed(r)
        check('EXIF' in rm and 'XMP' in rm and 'ICC' in rm and
              '%d bytes after' % len(zip_bytes()) in rm and r.outputs[0].type == 'image/webp',
              'WebP polyglot: notes and type', (rm, r.outputs))
    r = image(lossy[:len(lossy) // 2])
    check(finished(r) and r.status == 'fail', 'WebP truncated: fail', (r.status, r.reason))
    anim = (b'RIFF' + struct.pack('<I', 4 + 18 + 14) + b'WEBP' +
            riff_chunk(b'VP8X', bytes([0x02, 0, 0, 0]) + b'\0\0\0\0\0\0') +
            riff_chunk(b'ANIM', b'\0' * 6))
    r = image(anim)
    check(finished(r) and r.status == 'fail', 'WebP animated: fail', (r.status, r.reason))


# ---------------------------------------------------------------- TIFF

TIFF_UNIT = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
             16: 8, 17: 8, 18: 8}
TIFF_FMT = {1: 'B', 3: 'H', 4: 'I', 13: 'I', 16: 'Q'}
# the tags an output may have: ImageWidth, ImageLength, BitsPerSample,
# Compression, Photometric, StripOffsets, Orientation, SamplesPerPixel,
# RowsPerStrip, StripByteCounts, PlanarConfig, Predictor, ExtraSamples
TIFF_ALLOWED = {256, 257, 258, 259, 262, 273, 274, 277, 278, 279, 284, 317, 338}
TIFF_NEEDED = TIFF_ALLOWED - {274, 317, 338}


# 40x24 1-bit white-is-zero, CCITT group 4, Software tag (written by libtiff 4.5)
TIFF_G4 = base64.b64decode(
    'SUkqAOQAAAAhojo2iOjjMIEFPaQ2R0inXDSyPoIdIjqwlQRdRWX7G1sUCMLSyPoE4eEENl1FYVFOuHYoqwWl0iOrI6'
    'h4QQ6CUAEAEDGeiOi6MIwi8XRH+R9Ah0gQLQIjrhxWY9IewQKwlRVgtLyP2OkuEEOggQLisv2+H2NginpYXQIjrh4Q'
    'Q2CKcV7BArLrh2KKyACACC+eyOiOi8R0YIjoEFy/Y2CKHKtcPSyPor6QQWgQS2CKcVggtIe1sUVgWl4ILQTh4QQ6CC'
    'C4rwqKtcPsdAggvS6QQWgQJcPwgh7UAEAECwAAAQMAAQAAACgAAAABAQMAAQAAABgAAAACAQMAAQAAAAEAAAADAQMA'
    'AQAAAAQAAAAGAQMAAQAAAAAAAAARAQQAAwAAAHoBAAAVAQMAAQAAAAEAAAAWAQMAAQAAAAgAAAAXAQQAAwAAAG4BAA'
    'AcAQMAAQAAAAEAAAAxAQIABgAAAIYBAAAAAAAARAAAAEsAAABNAAAACAAAAEwAAACXAAAAcHJvYmUA')


# 40x24 YCbCr 4:2:0, JPEG compression, strips of 16 rows, Software tag (written by libtiff 4.5)
TIFF_JPEG = base64.b64decode(
    'SUkqAHIBAAD/2P/AABEIABAAKAMBIgACEQEDEQH/2gAMAwEAAhEDEQA/AOC8I23+r4r3jwlbgBCeAO9eP+Ebb/V8V6'
    've3f8AY3gPWdQVzHJFZSeW4zkSFdqdOfvEf/WonLli2ugoR5pKPc8TtLr+2vE2o6pg4vLuScAnOAzEgZwOgOOgr2Xw'
    'jbf6vivH/CNt/q+K9y8OmGxspLu4O2GCMyyNjOFUZJwPYU0lCNuw3ectFqzxjxXd/wBrfFHW5wpCxXP2YDJOPKAjP5'
    'lSfxorK8OGW9vHu52LzTyGSRiSSWY5JyeepooirRSYTacnY//Z/9j/wAARCAAIACgDASIAAhEBAxEB/9oADAMBAAIR'
    'AxEAPwCl4Rtv9XxXS/FS5Nj8MhbKoP2+8hgPHQDMn84x69fxBRUV5Win5r80KLszivCNt/q+K9G8VXLaV8LdcuEUFp'
    'Lb7PgjPErCM/o5ooq6jtEIuzueU+Ebb/V8UUUVZJ//2Q0AAAEDAAEAAAAoAAAAAQEDAAEAAAAYAAAAAgEDAAMAAAAU'
    'AgAAAwEDAAEAAAAHAAAABgEDAAEAAAAGAAAAEQEEAAIAAAAaAgAAFQEDAAEAAAADAAAAFgEDAAEAAAAQAAAAFwEDAA'
    'IAAADoAIIAHAEDAAEAAAABAAAAMQECAAYAAACQBAAAWwEHAD4CAABSAgAAFAIFAAYAAAAiAgAAAAAAAAgACAAIAAgA'
    'AADwAAAAAAAAAAEAAAD/AAAAAQAAAIAAAAABAAAA/wAAAAEAAACAAAAAAQAAAP8AAAABAAAA/9j/2wBDAAgGBgcGBQ'
    'gHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwL'
    'DBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/xAAfAAABBQ'
    'EBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgv/xAC1EAACAQMDAgQDBQUEBAAAAX0BAgMABBEFEiExQQYTUWEHInEUMoGR'
    'oQgjQrHBFVLR8CQzYnKCCQoWFxgZGiUmJygpKjQ1Njc4OTpDREVGR0hJSlNUVVZXWFlaY2RlZmdoaWpzdHV2d3h5eo'
    'OEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4eLj5OXm5+jp6vHy8/T1'
    '9vf4+fr/xAAfAQADAQEBAQEBAQEBAAAAAAAAAQIDBAUGBwgJCgv/xAC1EQACAQIEBAMEBwUEBAABAncAAQIDEQQFIT'
    'EGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNk'
    'ZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2d'
    'ri4+Tl5ufo6ery8/T19vf4+fr/2XByb2JlAA==')


# 20x20 RGB, LZW, 16x16 tiles, planar (one plane a sample), written by
# libtiff 4.5: sample S of the pixel at X, Y is x0 + y0 + 50 S + 3 (X - x0)
# (mod 256), x0, y0 being the corner of its tile
TIFF_LZW_TILES = base64.b64decode(
    'SUkqAIgEAACAAABgYEgwHhIKhgNh4QiQTioWwKCQaEQqGQ6IRKCweEwuGw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqT'
    'TKUyWYy2bzCWSiSTyTyOXyugzOcT2hTScz6hzWdT+iTaoSaAiABAJhYMhwPiISigVi4YjQbjoewKCQaEQqGQ6IRKCw'
    'eEwuGw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSiSTyTyOXyugzOcT2hTScz6hzWdT+iTaoSaAiABA'
    'JhYMhwPiISigVi4YjQbjoewKCQaEQqGQ6IRKCweEwuGw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSi'
    'STyTyOXyugzOcT2hTScz6hzWdT+iTaoSaAiACARiYUiwXjIajgdj4gkQjkomwKCQaEQqGQ6IRKCweEwuGw+IwONxWP'
    'RiQxOORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSiSTyTyOXyugzOcT2hTScz6hzWdT+iTaoSaAiADIajgdj4gkQjkoml'
    'AplYslwvwKCQaEQqGQ6IRKCweEwuGw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSiSTyTyOXyugzOcT'
    '2hTScz6hzWdT+iTaoSaAiAEIikglk4olQrloumAxmY0mw3wKCQaEQqGQ6IRKCweEwuGw+IwONxWPRiQxOORaPxmRRS'
    'OxeQRqXSqTTKUyWYy2bzCWSiSTyTyOXyugzOcT2hTScz6hzWdT+iTaoSaAiAEIikglk4olQrloumAxmY0mw3wKCQaE'
    'QqGQ6IRKCweEwuGw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSiSTyTyOXyugzOcT2hTScz6hzWdT+i'
    'TaoSaAiAFIqlgtl4wmQzmo2nA5nY8nw/wKCQaEQqGQ6IRKCweEwuGw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqTTKUy'
    'WYy2bzCWSiSTyTyOXyugzOcT2hTScz6hzWdT+iTaoSaAiAGQzmo2nA5nY8nw/oJCohFo5IwKCQaEQqGQ6IRKCweEwu'
    'Gw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSiSTyTyOXyugzOcT2hTScz6hzWdT+iTaoSaAiAHQ7no+'
    'oBBoZEoxHpJKphNp5QwKCQaEQqGQ6IRKCweEwuGw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSiSTyT'
    'yOXyugzOcT2hTScz6hzWdT+iTaoSaAiAHQ7no+oBBoZEoxHpJKphNp5QwKCQaEQqGQ6IRKCweEwuGw+IwONxWPRiQx'
    'OORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSiSTyTyOXyugzOcT2hTScz6hzWdT+iTaoSaAiAIRDopGpBJpZMpxPqJSqh'
    'Vq5YwKCQaEQqGQ6IRKCweEwuGw+IwONxWPRiQxOORaPxmRRSOxeQRqXSqTTKUyWYy2bzCWSiSTyTyOXyugzOcT2hTS'
    'cz6hzWdT+iTaoSaAgMAAABAwABAAAAFAAAAAEBAwABAAAAFAAAAAIBAwADAAAAHgUAAAMBAwABAAAABQAAAAYBAwAB'
    'AAAAAgAAABUBAwABAAAAAwAAABwBAwABAAAAAgAAADEBAgAGAAAAbAUAAEIBAwABAAAAEAAAAEMBAwABAAAAEAAAAE'
    'QBBAAMAAAAPAUAAEUBAwAMAAAAJAUAAAAAAAAIAAgACABgAGAAYABgAGAAYABgAGAAYABgAGAAYAAIAAAAaAAAAMgA'
    'AAAoAQAAiAEAAOgBAABIAgAAqAIAAAgDAABoAwAAyAMAACgEAABwcm9iZQA=')


def tiff_build(pages, bo='<', trailing=b''):
    """A classic TIFF of PAGES, [(tags, strip)], where tags maps a tag to
    (type, [numbers]) or (type, raw bytes); each page has one strip (its
    StripOffsets and StripByteCounts are added; TileOffsets and
    TileByteCounts when the tags have a TileWidth) and the IFDs are chained."""
    out = bytearray((b'II*\0' if bo == '<' else b'MM\0*') + b'\0' * 4)
    link = 4
    for tags, strip in pages:
        at = len(out)
        out += strip + b'\0' * (len(strip) & 1)
        tags = dict(tags)
        tiled = 322 in tags  # TileWidth: the offsets and counts are the tile's
        tags[324 if tiled else 273] = (4, [at])
        tags[325 if tiled else 279] = (4, [len(strip)])
        ifd = len(out)
        data_at = ifd + 2 + 12 * len(tags) + 4
        entries, extra = b'', b''
        for tag in sorted(tags):
            typ, vals = tags[tag]
            raw = (vals if isinstance(vals, bytes) else
                   b''.join(struct.pack(bo + TIFF_FMT[typ], v) for v in vals))
            if len(raw) <= 4:
                field = raw.ljust(4, b'\0')
            else:
                field = struct.pack(bo + 'I', data_at + len(extra))
                extra += raw + b'\0' * (len(raw) & 1)
            entries += struct.pack(bo + 'HHI', tag, typ, len(raw) // TIFF_UNIT[typ]) + field
        struct.pack_into(bo + 'I', out, link, ifd)
        out += struct.pack(bo + 'H', len(tags)) + entries
        link = len(out)
        out += b'\0' * 4 + extra
    return bytes(out) + trailing


def tiff_tags(w, h, spp=3, bps=8, photometric=2, extra=None):
    """The tags of an uncompressed W x H strip image (ExtraSamples EXTRA)."""
    tags = {256: (4, [w]), 257: (4, [h]), 258: (3, [bps] * spp), 259: (3, [1]),
            262: (3, [photometric]), 277: (3, [spp]), 278: (4, [h]), 284: (3, [1])}
    if extra is not None:
        tags[338] = (3, [extra])
    return tags


def tiff_rgb(w, h, pixels, extra_tags=None, bo='<', trailing=b'', spp=3, extra=None):
    """A one-page TIFF of PIXELS (rows of spp-tuples, 8 bits a sample)."""
    tags = tiff_tags(w, h, spp, extra=extra)
    tags.update(extra_tags or {})
    strip = bytes(v for row in pixels for p in row for v in p)
    return tiff_build([(tags, strip)], bo, trailing)


def tiff_tiled(w, h, tw, th, tile):
    """A W x H RGB TIFF in tiles of TW x TH (one tile of bytes TILE given)."""
    tags = tiff_tags(w, h)
    del tags[278]
    tags[322], tags[323] = (4, [tw]), (4, [th])
    return tiff_build([(tags, tile)])


def tiff_ifds(data):
    """[(offset, {tag: (type, count, values or raw bytes, value offset or None)})]
    of every IFD of a classic TIFF, and the byte order."""
    bo = {b'II*\0': '<', b'MM\0*': '>'}.get(data[:4])
    if bo is None:
        raise ValueError('no TIFF header')
    (off,) = struct.unpack(bo + 'I', data[4:8])
    ifds, seen = [], set()
    while off:
        if off in seen or off + 2 > len(data):
            raise ValueError('bad IFD offset %d' % off)
        seen.add(off)
        (n,) = struct.unpack(bo + 'H', data[off:off + 2])
        if off + 6 + 12 * n > len(data):
            raise ValueError('IFD at %d truncated' % off)
        tags = {}
        for k in range(n):
            e = data[off + 2 + 12 * k:off + 14 + 12 * k]
            tag, typ, cnt = struct.unpack(bo + 'HHI', e[:8])
            size = TIFF_UNIT.get(typ, 1) * cnt
            vat = None
            raw = e[8:8 + size]
            if size > 4:
                (vat,) = struct.unpack(bo + 'I', e[8:12])
                raw = data[vat:vat + size]
                if len(raw) != size:
                    raise ValueError('tag %d: value out of the file' % tag)
            vals = ([struct.unpack(bo + TIFF_FMT[typ], raw[i:i + TIFF_UNIT[typ]])[0]
                     for i in range(0, size, TIFF_UNIT[typ])] if typ in TIFF_FMT else raw)
            tags[tag] = (typ, cnt, vals, vat)
        ifds.append((off, tags))
        (off,) = struct.unpack(bo + 'I', data[off + 2 + 12 * n:off + 6 + 12 * n])
    return ifds, bo


def tiff_decode(data):
    """Check an output of the handler and return (width, height, spp,
    pixels): one IFD, only TIFF_ALLOWED tags with the baseline values,
    deflate strips that inflate to exactly their rows (predictor 2
    undone), and every byte of the file covered by the header, the IFD,
    its values and the strips (at most one zero byte of padding between
    them, none at the end). ValueError when anything is off."""
    ifds, bo = tiff_ifds(data)
    if len(ifds) != 1:
        raise ValueError('%d IFDs' % len(ifds))
    off, tags = ifds[0]
    if set(tags) - TIFF_ALLOWED or TIFF_NEEDED - set(tags):
        raise ValueError('tags %r' % sorted(tags))

    def one(tag, default=None):
        if tag not in tags:
            return default
        v = tags[tag][2]
        if len(v) != 1:
            raise ValueError('tag %d has %d values' % (tag, len(v)))
        return v[0]
    w, h, spp = one(256), one(257), one(277)
    if spp not in (3, 4) or tags[258][2] != [8] * spp:
        raise ValueError('SamplesPerPixel %r BitsPerSample %r' % (spp, tags[258][2]))
    if (one(259), one(262), one(284), one(274, 1)) != (8, 2, 1, 1):
        raise ValueError('Compression, Photometric, PlanarConfig, Orientation %r' %
                         [one(259), one(262), one(284), one(274, 1)])
    if (tags[338][2] if 338 in tags else []) != ([2] if spp == 4 else []):
        raise ValueError('ExtraSamples %r with %d samples' % (tags.get(338), spp))
    pred = one(317, 1)
    if pred not in (1, 2):
        raise ValueError('Predictor %r' % pred)
    rps = min(one(278), h)
    offs, counts = tags[273][2], tags[279][2]
    nstrips = (h + rps - 1) // rps
    if len(offs) != nstrips or len(counts) != nstrips:
        raise ValueError('%d strips, %d offsets, %d counts' % (nstrips, len(offs), len(counts)))
    used = [(0, 8), (off, off + 6 + 12 * len(tags))]
    used += [(t[3], t[3] + TIFF_UNIT[t[0]] * t[1]) for t in tags.values() if t[3] is not None]
    stride = w * spp
    pixels = bytearray()
    for s, (o, n) in enumerate(zip(offs, counts)):
        used.append((o, o + n))
        rows = min(rps, h - s * rps)
        raw = zlib.decompress(data[o:o + n])
        if len(raw) != rows * stride:
            raise ValueError('strip %d: %d bytes, want %d' % (s, len(raw), rows * stride))
        for y in range(rows):
            row = bytearray(raw[y * stride:(y + 1) * stride])
            if pred == 2:
                for i in range(spp, stride):
                    row[i] = (row[i] + row[i - spp]) & 0xff
            pixels += row
    used.sort()
    end = 0
    for a, b in used:
        if a < end:
            raise ValueError('overlap at %d' % a)
        if a - end > 1 or data[end:a].strip(b'\0'):
            raise ValueError('%d unreferenced bytes at %d' % (a - end, end))
        end = b
    if end != len(data):
        raise ValueError('%d bytes after the last referenced one (%d)' % (len(data) - end, end))
    return w, h, spp, bytes(pixels)


def tiff_pixels(w, h, seed, spp=3):
    rnd = random.Random(seed)
    return [[tuple(rnd.randrange(256) for _ in range(spp)) for _ in range(w)] for _ in range(h)]


def flat(rows):
    return bytes(v for row in rows for p in row for v in p)


def premultiplied(v, a):
    """What libtiff gives for unassociated alpha, and what the handler
    writes from it (the sample divided by the alpha again)."""
    if a == 0:
        return 0
    p = (v * a + 127) // 255
    return min(255, (p * 255 + a // 2) // a)


def tiff_check(what, r, want_size=None, want_pixels=None, name=None):
    """The run gave one clean TIFF (of that size and those pixels); returns
    the decoded (w, h, spp, pixels) or None."""
    if not check(finished(r) and r.status == 'ok' and len(r.outputs) == 1,
                 'TIFF %s: re-encoded' % what, (r.status, r.reason, r.stderr[-300:])):
        return None
    o = r.outputs[0]
    check(o.type == 'image/tiff' and o.name == name,
          'TIFF %s: type image/tiff, name %s' % (what, name), o)
    try:
        got = tiff_decode(bytes(o.data))
        err = ''
        if want_size is not None and got[:3] != want_size:
            err = 'size %r, want %r' % (got[:3], want_size)
        elif want_pixels is not None and got[3] != want_pixels:
            k = next(i for i in range(min(len(got[3]), len(want_pixels)))
                     if got[3][i] != want_pixels[i]) if len(got[3]) == len(want_pixels) else -1
            err = 'pixels differ (at byte %d)' % k
    except (ValueError, IndexError, KeyError, struct.error, zlib.error) as e:
        got, err = None, str(e)
    check(not err, 'TIFF %s: one IFD, baseline tags only, nothing after the data, '
          'the right pixels' % what, err)
    return got


def test_tiff():
    # 8-bit RGB with text tags, XMP, ICC, IPTC, a private tag and a zip after it
    w, h = 13, 7
    px = tiff_pixels(w, h, 1)
    meta = {270: (2, b'<script>alert(1)</script>\0'), 305: (2, b'EvilSoft 1.0\0'),
            306: (2, b'2024:01:02 03:04:05\0'), 700: (1, b'<x:xmpmeta>secret</x:xmpmeta>'),
            34675: (7, b'\0' * 128), 33723: (7, b'\x1c\x02\x78\0\x05hello'),
            65000: (7, b'private data'), 282: (5, struct.pack('<II', 300, 1)),
            283: (5, struct.pack('<II', 300, 1)), 296: (3, [2])}
    poly = tiff_rgb(w, h, px, meta, trailing=zip_bytes())
    r = image(poly, {'name': 'scan.tiff'})
    got = tiff_check('RGB with metadata and a zip after it', r, (w, h, 3), flat(px), 'scan.tiff')
    if got:
        out = bytes(r.outputs[0].data)
        check(all(s not in out for s in (b'PK\x03\x04', b'script', b'EvilSoft', b'2024:',
                                         b'xmpmeta', b'hello', b'private')),
              'TIFF RGB with metadata: none of it in the output')
        rm = removed(r)
        check('3 text tags (ImageDescription, Software, DateTime)' in rm and 'XMP' in rm and
              'ICC' in rm and 'IPTC' in rm and '1 other tag' in rm and not r.notes_of('converted'),
              'TIFF RGB with metadata: notes', r.notes)
    # big-endian input, the same pixels; the output is little-endian
    r = image(tiff_rgb(w, h, px, bo='>'), {'name': 'be.tif'})
    if tiff_check('big-endian RGB', r, (w, h, 3), flat(px), 'be.tif'):
        check(bytes(r.outputs[0].data[:4]) == b'II*\0' and not r.notes,
              'TIFF big-endian RGB: little-endian output, no note', r.notes)
    # a larger image: several strips
    w2, h2 = 300, 200
    px2 = tiff_pixels(w2, h2, 2)
    r = image(tiff_rgb(w2, h2, px2), {'name': 'big.tif'})
    got = tiff_check('300x200 RGB', r, (w2, h2, 3), flat(px2), 'big.tif')
    if got:
        tags = tiff_ifds(bytes(r.outputs[0].data))[0][0][1]
        check(len(tags[273][2]) > 1, 'TIFF 300x200 RGB: written in several strips',
              tags[273][2])
    # three pages: the first is kept
    pages = [(tiff_tags(4, 3), flat(tiff_pixels(4, 3, 3))),
             (tiff_tags(5, 2), flat(tiff_pixels(5, 2, 4))),
             (tiff_tags(2, 2) | {270: (2, b'page three\0')}, flat(tiff_pixels(2, 2, 5)))]
    r = image(tiff_build(pages), {'name': 'fax.tif'})
    if tiff_check('three pages', r, (4, 3, 3), pages[0][1], 'fax.tif'):
        check(removed(r) == '2 other pages (only the first is kept)',
              'TIFF three pages: the other two noted as removed', r.notes)
    r = image(tiff_build(pages[:2]))
    if tiff_check('two pages', r, (4, 3, 3), pages[0][1]):
        check(removed(r) == '1 other page (only the first is kept)',
              'TIFF two pages: one page noted as removed', r.notes)
    # alpha: unassociated in and out; all opaque: no alpha out
    pxa = tiff_pixels(6, 5, 6, 4)
    pxa[0][0] = (10, 20, 30, 0)
    pxa[0][1] = (200, 100, 50, 255)
    pxa[1][0] = (255, 255, 255, 1)
    want = [[(premultiplied(p[0], p[3]), premultiplied(p[1], p[3]), premultiplied(p[2], p[3]),
              p[3]) for p in row] for row in pxa]
    r = image(tiff_rgb(6, 5, pxa, spp=4, extra=2), {'name': 'alpha.tif'})
    tiff_check('RGBA (unassociated alpha)', r, (6, 5, 4), flat(want), 'alpha.tif')
    opaque = [[p[:3] + (255,) for p in row] for row in pxa]
    r = image(tiff_rgb(6, 5, opaque, spp=4, extra=2))
    tiff_check('RGBA, every pixel opaque', r, (6, 5, 3), flat([[p[:3] for p in row]
                                                              for row in opaque]))
    # grey and 16-bit: converted, noted
    grey = [[(x * 30 + y,) for x in range(8)] for y in range(3)]
    r = image(tiff_build([(tiff_tags(8, 3, 1, photometric=1), flat(grey))]))
    if tiff_check('8-bit grey', r, (8, 3, 3), flat([[p * 3 for p in row] for row in grey])):
        check(r.notes_of('converted') == ['8-bit grey TIFF image converted to 8-bit RGB'],
              'TIFF 8-bit grey: conversion noted', r.notes)
    deep = tiff_pixels(4, 2, 7)
    strip16 = b''.join(struct.pack('<H', v * 257) for row in deep for p in row for v in p)
    r = image(tiff_build([(tiff_tags(4, 2, 3, 16), strip16)]))
    if tiff_check('16-bit RGB', r, (4, 2, 3), flat(deep)):
        check(r.notes_of('converted') == ['16-bit RGB TIFF image converted to 8-bit RGB'],
              'TIFF 16-bit RGB: conversion noted', r.notes)
    # Orientation 2 to 8: applied to the pixels, written top-left
    ow, oh = 3, 2
    opx = tiff_pixels(ow, oh, 8)
    shown = {
        1: lambda x, y: opx[y][x], 2: lambda x, y: opx[y][ow - 1 - x],
        3: lambda x, y: opx[oh - 1 - y][ow - 1 - x], 4: lambda x, y: opx[oh - 1 - y][x],
        5: lambda x, y: opx[x][y], 6: lambda x, y: opx[oh - 1 - x][y],
        7: lambda x, y: opx[oh - 1 - x][ow - 1 - y], 8: lambda x, y: opx[x][ow - 1 - y]}
    for o in range(1, 9):
        vw, vh = (oh, ow) if o >= 5 else (ow, oh)
        want = [[shown[o](x, y) for x in range(vw)] for y in range(vh)]
        r = image(tiff_rgb(ow, oh, opx, {274: (3, [o])}))
        if tiff_check('orientation %d' % o, r, (vw, vh, 3), flat(want)):
            note = ['TIFF orientation %d applied to the pixels' % o] if o > 1 else []
            check(r.notes_of('info') == note, 'TIFF orientation %d: %s' %
                  (o, 'noted' if o > 1 else 'no note'), r.notes)
    # files written by libtiff: fax, JPEG, tiled planar LZW
    r = image(TIFF_G4)
    got = tiff_check('CCITT group 4 (libtiff)', r, (40, 24, 3))
    if got:
        seen = set(got[3][i:i + 3] for i in range(0, len(got[3]), 3))
        check(seen == {b'\0\0\0', b'\xff\xff\xff'} and
              r.notes_of('converted') == ['1-bit grey TIFF image converted to 8-bit RGB'] and
              removed(r) == '1 text tag (Software)',
              'TIFF CCITT group 4: black and white pixels, conversion and Software noted',
              (seen, r.notes))
    r = image(TIFF_JPEG)
    if tiff_check('JPEG YCbCr (libtiff)', r, (40, 24, 3)):
        check(r.notes_of('converted') == ['8-bit YCbCr TIFF image converted to 8-bit RGB'],
              'TIFF JPEG YCbCr: conversion noted', r.notes)
    want = [[tuple((X // 16 * 16 + Y // 16 * 16 + 50 * c + 3 * (X % 16)) & 0xff for c in range(3))
             for X in range(20)] for Y in range(20)]
    r = image(TIFF_LZW_TILES)
    if tiff_check('LZW tiles, planar (libtiff)', r, (20, 20, 3), flat(want)):
        check(removed(r) == '1 text tag (Software)' and not r.notes_of('converted'),
              'TIFF LZW tiles: Software noted, nothing converted', r.notes)
    # failures: a libtiff error is the reason, nothing on stderr
    good = tiff_rgb(w, h, px)
    no_length = tiff_build([({k: v for k, v in tiff_tags(w, h).items() if k != 257},
                             flat(px))])
    floats = tiff_build([(tiff_tags(2, 2, 1, 32, 1) | {339: (3, [3])}, b'\0' * 16)])
    for what, data in (('with a short strip', tiff_build([(tiff_tags(w, h), flat(px)[:50])])),
                       ('cut short', good[:60]),
                       ('without ImageLength', no_length),
                       ('32-bit floating-point samples', floats),
                       ('header only', b'II*\0' + b'\0' * 100),
                       ('IFD past the end', b'MM\0*\0\0\x10\0')):
        r = image(data)
        check(finished(r) and r.status == 'fail' and not r.outputs and
              (r.reason or '').startswith('TIFF image') and r.stderr == b'',
              'TIFF %s: fail with the reason from libtiff, nothing on stderr' % what,
              (r.status, r.reason, r.stderr[-300:]))
    # pixel bombs: refused from the tags, before any pixel is allocated
    for bw, bh in ((100000, 100000), (0xffffffff, 0xffffffff), (1, 40000001)):
        r, secs = timed(tiff_build([(tiff_tags(bw, bh), b'\0' * 64)]))
        check(finished(r) and r.status == 'limit' and 'over max-pixels' in (r.reason or '') and
              secs < 5, 'TIFF bomb %dx%d: limit (over max-pixels) in %.2f s (as=256 MiB)' %
              (bw, bh, secs), (r.status, r.reason))
    # a link to a second page past the end of the file: the first page is
    # still the picture (the broken link only loses the page count)
    one = bytearray(tiff_rgb(w, h, px))
    nxt = struct.unpack_from('<I', one, 4)[0]
    nxt += 2 + 12 * struct.unpack_from('<H', one, nxt)[0]
    struct.pack_into('<I', one, nxt, len(one) + 4096)
    r = image(bytes(one))
    check(finished(r) and r.status == 'ok' and len(r.outputs) == 1 and
          tiff_decode(bytes(r.outputs[0].data))[3] == flat(px) if r.outputs else False,
          'TIFF whose next-page link points past the end: the first page, re-encoded',
          (r.status, r.reason))
    # strips or tiles out of proportion to the picture (libtiff sizes its
    # buffer from them): refused before libtiff allocates it
    for what, data, want in (
            ('1x1 with a 4096x4096 tile', tiff_tiled(1, 1, 4096, 4096, b'\0' * 64), 'limit'),
            ('1x1 with 9 samples a pixel', tiff_build([(tiff_tags(1, 1, 9), b'\0' * 9)]),
             'limit')):
        # (the libtiff-written tiled file above is the case that passes)
        r = image(data)
        check(finished(r) and r.status == want and 'TIFF image of' in (r.reason or '') and
              'declares' in r.reason, 'TIFF %s: %s' % (what, want), (r.status, r.reason))
    small = tiff_rgb(10, 10, tiff_pixels(10, 10, 9))
    r = image(small, {'max-pixels': '99'})
    check(r.status == 'limit' and 'TIFF image of 10x10 pixels' in (r.reason or ''),
          'TIFF max-pixels=99 on 10x10: limit', (r.status, r.reason))
    r = image(small, {'max-pixels': '100'})
    check(r.status == 'ok', 'TIFF max-pixels=100 on 10x10: ok', (r.status, r.reason))


def timed(data, opts=None):
    t0 = time.time()
    r = image(data, dict(BOMB_OPTS, **(opts or {})))
    return r, time.time() - t0


def test_limits():
    idat = png_chunk(b'IDAT', zlib.compress(b'\0' * 1000))
    bombs = [
        ('PNG 100000x100000',
         PNG_SIG + png_chunk(b'IHDR', struct.pack('>IIBBBBB', 100000, 100000, 8, 6, 0, 0, 0)) +
         idat + png_chunk(b'IEND', b'')),
        ('GIF screen 65535x65535',
         b'GIF89a' + struct.pack('<HHBBB', 65535, 65535, 0x80, 0, 0) + b'\0' * 6 +
         b'\x2c' + struct.pack('<HHHHB', 0, 0, 65535, 65535, 0) + b'\x02\x02\x4c\x01\x00\x3b'),
        ('GIF frame 65535x65535 on a small screen',
         b'GIF89a' + struct.pack('<HHBBB', 10, 10, 0x80, 0, 0) + b'\0' * 6 +
         b'\x2c' + struct.pack('<HHHHB', 0, 0, 65535, 65535, 0) + b'\x02\x02\x4c\x01\x00\x3b'),
        ('BMP 100000x100000',
         b'BM' + struct.pack('<IHHI', 54, 0, 0, 54) +
         struct.pack('<IiiHHIIiiII', 40, 100000, 100000, 1, 24, 0, 0, 0, 0, 0, 0)),
    ]
    gray = make_jpeg(16, 16, [[[100, 100], [100, 100]]])
    k = gray.index(b'\xff\xc0')
    bombs.append(('JPEG 60000x60000', gray[:k + 5] + struct.pack('>HH', 60000, 60000) +
                  gray[k + 9:]))
    lossless = corpus_file('corkami/mini/webpl.webp')
    v = (16383 | (16383 << 14)) | (int.from_bytes(lossless[21:25], 'little') & ~((1 << 28) - 1))
    bombs.append(('WebP 16384x16384', lossless[:21] + v.to_bytes(4, 'little') + lossless[25:]))
    for what, data in bombs:
        r, secs = timed(data)
        check(finished(r) and r.status == 'limit' and secs < 2,
              'bomb %s: limit in %.2f s (as=256 MiB)' % (what, secs), (r.status, r.reason))
    small = make_png(10, 10, 8, 2, [[(1, 2, 3)] * 10] * 10)
    r = image(small, {'max-pixels': '99'})
    check(r.status == 'limit', 'max-pixels=99 on a 10x10 PNG: limit', (r.status, r.reason))
    r = image(small, {'max-pixels': '100'})
    check(r.status == 'ok', 'max-pixels=100 on a 10x10 PNG: ok', (r.status, r.reason))
    r = image(small, {'max-input': '50'})
    check(r.status == 'limit', 'max-input=50 on a larger file: limit', (r.status, r.reason))


def test_other():
    for what, data in (('empty', b''), ('text', b'hello, world\n' * 10),
                       ('zip', zip_bytes()), ('BM text', b'BMW cars are nice\n')):
        r = image(data)
        check(finished(r) and r.status == 'fail' and not r.outputs,
              'not an image (%s): fail' % what, (r.status, r.reason))
    r = image(b'II*\0' + b'\0' * 100)
    check(finished(r) and r.status == 'fail' and not r.outputs and
          (r.reason or '').startswith('TIFF image: '),
          'TIFF header and zeros: fail with a TIFF reason', (r.status, r.reason))


def test_mutations():
    """Deterministic mutations of one file per format: never a crash."""
    rnd = random.Random(20240601)
    seeds = [corpus_file('python-email/python.png'), corpus_file('python-email/python.jpg'),
             corpus_file('python-email/python.gif'), corpus_file('python-email/python.webp'),
             corpus_file('python-email/python.bmp'), corpus_file('python-email/python.tiff'),
             tiff_rgb(13, 7, tiff_pixels(13, 7, 10), {270: (2, b'a description\0')}),
             make_gif(10, 20, [{'x': 0, 'y': 0, 'w': 10, 'h': 20, 'interlace': True,
                                'pixels': bytes(range(200))}], bytes(768))]
    crashes = []
    runs = 0
    for seed in seeds:
        for _ in range(20):
            d = bytearray(seed)
            for _ in range(rnd.randint(1, 8)):
                op = rnd.randrange(3)
                pos = rnd.randrange(len(d))
                if op == 0:
                    d[pos] = rnd.randrange(256)
                elif op == 1:
                    del d[pos:pos + rnd.randint(1, 16)]
                else:
                    d[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
            r = image(bytes(d))
            runs += 1
            if not finished(r):
                crashes.append((bytes(d[:32]), r.returncode, r.stderr[-200:]))
            elif r.status == 'ok':
                err = ''
                try:
                    out = one_output(r)
                    kind = sniff(out[:16])
                    if kind == 'png':
                        png_decode(out, strict=True)
                    elif kind == 'gif':
                        gif_clean(out, None)
                    elif kind == 'webp':
                        webp_clean(out)
                    elif kind == 'jpeg':
                        jpeg_clean(out)
                    elif kind == 'tiff':
                        tiff_decode(out)
                    else:
                        err = 'output of unknown type'
                except (ValueError, IndexError, KeyError, TypeError, struct.error,
                        zlib.error) as e:
                    err = str(e)
                if err:
                    crashes.append(('bad output', err))
    check(not crashes, '%d mutated images: every run ends with a Z record and clean output' % runs,
          crashes[:5])


def test_fixed_points():
    """Every output given again, with the same options and its own name,
    comes out with the same bytes, name and type and no note (nothing was
    left to remove or convert); a JPEG a third time too."""
    groups = {}
    for group, what, _, opts, o in PASS1:
        out = bytes(o.data)
        opts = dict(opts, **({'name': o.name} if o.name is not None else {}))
        err = ''
        for n in range(2, 4 if sniff(out[:16]) == 'jpeg' else 3):
            r = run(WORKER, 'image', data=out, opts=opts)
            if not finished(r) or r.status != 'ok' or len(r.outputs) != 1:
                err = 'pass %d: %s (%s)' % (n, r.status, r.reason)
            elif bytes(r.outputs[0].data) != out:
                new = bytes(r.outputs[0].data)
                at = next((k for k in range(min(len(out), len(new))) if out[k] != new[k]),
                          min(len(out), len(new)))
                err = 'pass %d: %d bytes (pass 1: %d), first difference at byte %d' % (
                    n, len(new), len(out), at)
            elif (r.outputs[0].name, r.outputs[0].type) != (o.name, o.type):
                err = 'pass %d: %r' % (n, r.outputs[0])
            elif r.notes:
                err = 'pass %d notes %r' % (n, r.notes)
            if err:
                break
        groups.setdefault(group, []).append('%s: %s' % (what, err) if err else '')
    check(len(PASS1) >= 120 and
          {'corpus', 'png', 'jpeg', 'gif', 'bmp', 'webp', 'tiff', 'mutations'} <= set(groups),
          'fixed point: %d outputs to give again' % len(PASS1), sorted(groups))
    for group, errs in groups.items():
        bad = [e for e in errs if e]
        check(not bad, 'fixed point (%s): %d outputs sanitised again give the same bytes, name '
              'and type and no note (JPEG: a third time too)' % (group, len(errs)), bad[:5])


def test_deterministic():
    """The first pass again, with glibc filling every allocation with a
    pattern (MALLOC_PERTURB_): the same bytes, so no uninitialised byte
    reaches an output."""
    bad, n = [], 0
    old = os.environ.get('MALLOC_PERTURB_')
    os.environ['MALLOC_PERTURB_'] = '165'
    try:
        for group, what, data, opts, o in PASS1:
            if group == 'mutations':
                continue
            n += 1
            r = run(WORKER, 'image', data=data, opts=opts)
            if (not finished(r) or r.status != 'ok' or len(r.outputs) != 1 or
                    r.outputs[0].data != o.data):
                bad.append('%s %s: %s' % (group, what, r.status))
    finally:
        if old is None:
            del os.environ['MALLOC_PERTURB_']
        else:
            os.environ['MALLOC_PERTURB_'] = old
    check(n >= 100 and not bad, 'deterministic: %d inputs given again with MALLOC_PERTURB_=165 '
          'give the same bytes' % n, bad[:5])


def main():
    if not WORKER or not os.access(WORKER, os.X_OK):
        check(False, 'the worker is given (--worker)', WORKER)
        done()
    t0 = time.time()
    test_corpus()
    test_png()
    test_jpeg()
    test_gif()
    test_bmp()
    test_webp()
    test_tiff()
    test_limits()
    test_other()
    test_mutations()
    t1 = time.time()
    test_fixed_points()
    test_deterministic()
    print('# %.1f s (%.1f s for the second and third passes and the determinism check)' %
          (time.time() - t0, time.time() - t1))
    done()


if __name__ == '__main__':
    main()
