# SPDX-License-Identifier: GPL-2.0-or-later
"""Hand-written PDFs for the CDR tests (test_pdf.py, test_pipeline.py)."""


def stream(data, extra=b''):
    """A stream object of DATA (EXTRA: more dictionary entries)."""
    return b'<< /Length %d %s>>\nstream\n' % (len(data), extra) + data + b'\nendstream'


def pdf_file(objs, trailer=b''):
    """A classic PDF (xref table) of OBJS, {number: body}, catalog 1 0 R;
    returns (bytes, xref offset, size)."""
    out = bytearray(b'%PDF-1.4\n%\xe2\xe3\xcf\xd3\n')
    offs = {}
    for n in sorted(objs):
        offs[n] = len(out)
        out += b'%d 0 obj\n' % n + objs[n] + b'\nendobj\n'
    xref = len(out)
    size = max(objs) + 1
    out += b'xref\n0 %d\n0000000000 65535 f \n' % size
    for n in range(1, size):
        out += (b'%010d 00000 n \n' % offs[n]) if n in offs else b'0000000000 65535 f \n'
    out += b'trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n' % (
        size, trailer, xref)
    return bytes(out), xref, size
