"""A stand-in for ``curl`` with the flags the README's walk-through uses, so that
``tests/test_readme.py`` runs the walk-through where curl is not installed.

Flags: ``-s``, ``-i``, ``-X METHOD``, ``-H 'Name: value'``, ``-d DATA``,
``--data-binary DATA`` (``@file``, ``@-`` for standard input), ``-u user:password``,
``-o FILE``, ``-D FILE`` (``-`` for standard output) and ``-w`` with ``%{http_code}``.
Any other flag is an error, so a README example with a new flag fails its test rather
than doing something else. As curl does, it follows no redirect, exits 0 on any HTTP
answer, and sends ``-d`` data as ``application/x-www-form-urlencoded`` by default.
Each answer's status is appended to the file named by ``PATHCREDIT_README_STATUSES``,
when set, for the test to check.
"""

from __future__ import annotations

import base64
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPResponse
from pathlib import Path
from typing import cast

TAKES_VALUE = {"-X", "-H", "-d", "--data-binary", "-u", "-o", "-D", "-w"}


@dataclass
class Request:
    """What the command line asks for."""

    url: str = ""
    method: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    form: bool = False
    include: bool = False
    output: str | None = None
    dump_headers: str | None = None
    write_out: str | None = None


def parse(argv: list[str]) -> Request:
    request = Request()
    args = iter(argv)
    for arg in args:
        if arg in TAKES_VALUE:
            apply(request, arg, next(args))
        elif arg == "-s":
            continue
        elif arg == "-i":
            request.include = True
        elif arg.startswith("-"):
            raise SystemExit(f"curl stand-in: flag {arg} is not supported")
        else:
            request.url = arg
    if not request.url:
        raise SystemExit("curl stand-in: no URL")
    return request


def apply(request: Request, flag: str, value: str) -> None:
    if flag == "-X":
        request.method = value
    elif flag == "-H":
        name, _, text = value.partition(":")
        request.headers.append((name.strip(), text.strip()))
    elif flag == "-d":
        request.data.append(
            read_file(value[1:]).replace(b"\n", b"") if value[:1] == "@" else value.encode()
        )
        request.form = True
    elif flag == "--data-binary":
        request.data.append(read_file(value[1:]) if value[:1] == "@" else value.encode())
        request.form = True
    elif flag == "-u":
        token = base64.b64encode(value.encode()).decode()
        request.headers.append(("Authorization", f"Basic {token}"))
    elif flag == "-o":
        request.output = value
    elif flag == "-D":
        request.dump_headers = value
    else:
        request.write_out = value


def read_file(name: str) -> bytes:
    return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    version: int
    headers: list[tuple[str, str]]
    body: bytes

    def head(self) -> bytes:
        """The status line and header fields as they came, as curl shows them."""
        lines = [f"HTTP/{self.version / 10:.1f} {self.status} {self.reason}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send(request: Request) -> Answer:
    body = b"&".join(request.data) if request.data else None
    method = request.method or ("POST" if body is not None else "GET")
    headers = {"User-Agent": "curl-stand-in", "Accept": "*/*"}
    if request.form:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers.update(dict(request.headers))
    outgoing = urllib.request.Request(request.url, data=body, headers=headers, method=method)
    opener = urllib.request.build_opener(NoRedirects)
    try:
        return read(opener.open(outgoing, timeout=300))
    except urllib.error.HTTPError as error:  # a 4xx or 5xx is an answer all the same
        return read(cast(HTTPResponse, error.fp))


def read(response: HTTPResponse) -> Answer:
    with response:
        headers = response.headers.items()
        return Answer(response.status, response.reason, response.version, headers, response.read())


def write(target: str, data: bytes) -> None:
    if target == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(target).write_bytes(data)


def main(argv: list[str]) -> int:
    request = parse(argv)
    try:
        answer = send(request)
    except urllib.error.URLError as error:
        print(f"curl stand-in: {error.reason}", file=sys.stderr)
        return 7
    record(answer.status)
    if request.dump_headers is not None:
        write(request.dump_headers, answer.head())
    body = (answer.head() if request.include else b"") + answer.body
    if request.output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        Path(request.output).write_bytes(body)
    if request.write_out is not None:
        text = request.write_out.replace("%{http_code}", str(answer.status))
        sys.stdout.write(text.replace("\\n", "\n"))
    return 0


def record(status: int) -> None:
    statuses = os.environ.get("PATHCREDIT_README_STATUSES")
    if statuses:
        with Path(statuses).open("a") as out:
            out.write(f"{status}\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
