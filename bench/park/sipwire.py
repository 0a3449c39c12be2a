"""Bytes-level SIP helpers for the benchmark's NOTIFY receivers.

The watchers receive thousands of NOTIFYs a second, some tens of KB long
(a group's full state); decoding and parsing each as text made the Python
receivers fall behind until their socket buffers overflowed and Orbit's
retransmissions 500 ms later were what got measured. Only the head is
split into lines here; the body is searched once, as bytes.
"""

import re

CALL_ID = re.compile(rb'<dialog\b[^>]*\bcall-id="([^"]+)"')
ECHOED = (b"via:", b"from:", b"to:", b"call-id:", b"cseq:", b"v:", b"f:", b"t:", b"i:")


def split(data):
    """(first line, head lines, body) of a datagram."""
    end = data.find(b"\r\n\r\n")
    head, body = (data, b"") if end < 0 else (data[:end], data[end + 4:])
    lines = head.split(b"\r\n")
    return lines[0], lines[1:], body


def header(lines, name):
    """The first value of a header (long form name, lower case, bytes)."""
    for l in lines:
        k, sep, v = l.partition(b":")
        if sep and k.strip().lower() == name:
            return v.strip()
    return b""


def ok_for(lines):
    """The 200 OK to a request, echoing Via, From, To, Call-ID and CSeq."""
    out = [b"SIP/2.0 200 OK"]
    out += [l for l in lines if l[:8].lower().startswith(ECHOED)]
    out.append(b"Content-Length: 0")
    return b"\r\n".join(out) + b"\r\n\r\n"


def call_ids(body):
    return [c.decode() for c in CALL_ID.findall(body)]
