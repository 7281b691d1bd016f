"""The guarded reader: every hazard of a user's file gets its own reason, nothing hangs."""

from __future__ import annotations

import codecs
import os
import socket

import pytest

from pipeline.core.inputfile import InputRefused, decode_text, parse_json, parse_yaml, read_bytes


def _refused(fn, *args, **kwargs) -> InputRefused:
    with pytest.raises(InputRefused) as info:
        fn(*args, **kwargs)
    assert "0x7f" not in info.value.detail and " at 0x" not in info.value.detail
    return info.value


def test_regular_file_is_read(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"hello")
    assert read_bytes(tmp_path / "a.txt", "config") == b"hello"


@pytest.mark.timeout(10)
def test_special_files_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "x.xml"
    os.mkfifo(fifo)
    assert _refused(read_bytes, fifo, "annotation").reason == "not-a-regular-file"
    assert "fifo" in _refused(read_bytes, fifo, "annotation").detail
    sock_path = tmp_path / "s.json"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        assert "socket" in _refused(read_bytes, sock_path, "annotation").detail
    assert "device" in _refused(read_bytes, "/dev/zero", "annotation").detail
    assert "directory" in _refused(read_bytes, tmp_path, "annotation").detail


def test_links(tmp_path):
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    assert _refused(read_bytes, tmp_path / "dangling.json", "annotation").reason == "dangling-link"
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert _refused(read_bytes, tmp_path / "a", "annotation").reason == "link-loop"
    assert _refused(read_bytes, tmp_path / "missing", "annotation").reason == "missing-file"
    (tmp_path / "real.txt").write_text("ok")
    (tmp_path / "good").symlink_to(tmp_path / "real.txt")
    assert read_bytes(tmp_path / "good", "config") == b"ok"


def test_size_cap(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 101)
    err = _refused(read_bytes, tmp_path / "big", "config", limit=100)
    assert err.reason == "file-too-large" and "101" in err.detail and "100" in err.detail


@pytest.mark.parametrize("data, text", [
    (b"abc", "abc"),
    (codecs.BOM_UTF8 + b"abc", "abc"),
    (codecs.BOM_UTF16_LE + "abc".encode("utf-16-le"), "abc"),
    (codecs.BOM_UTF16_BE + "abc".encode("utf-16-be"), "abc"),
    ("café".encode(), "café"),
])
def test_text_decoding(data, text):
    assert decode_text(data) == text


def test_latin1_is_refused_with_offset():
    err = _refused(decode_text, "names: [café]".encode("latin-1"))
    assert err.reason == "not-utf8" and "0xe9" in err.detail and "11" in err.detail


@pytest.mark.parametrize("doc, reason", [
    (b"[" * 100_000, "json-too-deep"),
    (b"[" * 65 + b"]" * 65, "json-too-deep"),
    (b'{"w": 1e999}', "malformed-json"),
    (b'{"w": NaN}', "malformed-json"),
    (b'{"w": -Infinity}', "malformed-json"),
    (b'{"w": ', "malformed-json"),
    (b"\xff\xfe\x00", "not-utf8"),
])
def test_json_refusals(doc, reason):
    assert _refused(parse_json, doc).reason == reason


def test_json_accepts_ordinary_documents():
    assert parse_json(codecs.BOM_UTF8 + b'{"a": [1, 2.5, "[[["], "b": null}') == {"a": [1, 2.5, "[[["], "b": None}
    assert parse_json(b"[" * 64 + b"]" * 64) is not None


def test_yaml_alias_bomb_is_refused_fast():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    err = _refused(parse_yaml, "\n".join(lines).encode())
    assert err.reason == "yaml-too-large"
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    assert _refused(parse_yaml, many.encode()).reason == "yaml-alias-bomb"


def test_yaml_ordinary_and_malformed():
    assert parse_yaml(b"names: [cat, dog]\nbase: &b {x: 1}\nother: *b\n") == {
        "names": ["cat", "dog"], "base": {"x": 1}, "other": {"x": 1}}
    assert parse_yaml(b"") is None
    assert _refused(parse_yaml, b"a: [1, 2").reason == "malformed-yaml"
    assert _refused(parse_yaml, "names: [café]".encode("latin-1")).reason == "not-utf8"


def test_yaml_with_forbidden_characters_is_malformed():
    assert _refused(parse_yaml, b"\x00").reason == "malformed-yaml"
