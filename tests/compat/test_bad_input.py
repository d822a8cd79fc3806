"""Bad bytes on the client port: the offending connection is closed, everyone else is served."""

import os
import socket
import struct

import pytest
from kazoo.client import KazooClient

import zkraw
from conftest import wait_for
from zkraw import ZkRaw, i32
from zkserver import HOST, ZkServer

MAXBUF = 4096


@pytest.fixture(scope="module")
def bad_server():
    s = ZkServer(cfg={"jute.maxbuffer": str(MAXBUF)})
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


@pytest.fixture(scope="module")
def witness(bad_server):
    """A kazoo session that lives through every bad connection."""
    c = KazooClient(hosts=bad_server.hosts, timeout=10.0)
    c.start(timeout=30)
    c.ensure_path("/bad")
    yield c
    c.stop()
    c.close()


def assert_still_serving(server, witness, tag):
    assert server.alive()
    witness.create(f"/bad/{tag}", b"ok")
    assert witness.get(f"/bad/{tag}")[0] == b"ok"
    fresh = KazooClient(hosts=server.hosts, timeout=10.0)
    fresh.start(timeout=30)
    try:
        assert fresh.get(f"/bad/{tag}")[0] == b"ok"
    finally:
        fresh.stop()
        fresh.close()


def raw_socket(server):
    s = socket.create_connection((HOST, server.port), timeout=15)
    return s


def closed_by_server(sock, timeout=15.0):
    c = ZkRaw.__new__(ZkRaw)
    c.sock = sock
    c.io_timeout = timeout
    return c.wait_closed(timeout)


def test_frame_under_limit_is_served(bad_server, witness):
    c = ZkRaw(HOST, bad_server.port)
    try:
        assert c.create("/bad/small", b"x" * (MAXBUF // 2))[0] == 0
    finally:
        c.close()


def test_request_over_jute_maxbuffer_closes_connection(bad_server, witness):
    c = ZkRaw(HOST, bad_server.port)
    try:
        with pytest.raises((zkraw.ConnectionClosed, ConnectionResetError, BrokenPipeError)):
            c.create("/bad/huge", b"x" * (MAXBUF + 1000))
    finally:
        c.close_socket()
    assert witness.exists("/bad/huge") is None
    assert_still_serving(bad_server, witness, "after-huge")


def test_huge_length_prefix_before_connect(bad_server, witness):
    s = raw_socket(bad_server)
    try:
        s.sendall(struct.pack(">i", 0x7FFFFFF0) + b"\x00" * 16)
        assert closed_by_server(s)
    finally:
        s.close()
    s = raw_socket(bad_server)
    try:
        s.sendall(struct.pack(">i", -5) + b"\x00" * 16)  # negative length
        assert closed_by_server(s)
    finally:
        s.close()
    assert_still_serving(bad_server, witness, "after-len")


def test_garbage_before_connect(bad_server, witness):
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(64), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        s = raw_socket(bad_server)
        try:
            s.sendall(junk)
            assert closed_by_server(s), junk
        finally:
            s.close()
    assert_still_serving(bad_server, witness, "after-garbage")


def test_malformed_connect_request(bad_server, witness):
    s = raw_socket(bad_server)
    try:
        s.sendall(i32(6) + b"\x00\x01\x02\x03\x04\x05")  # too short for a ConnectRequest
        assert closed_by_server(s)
    finally:
        s.close()
    assert_still_serving(bad_server, witness, "after-bad-connect")


def test_malformed_request_after_connect(bad_server, witness):
    # Apache 3.8: a request body that does not parse is answered with
    # MarshallingError (-5) and the connection stays usable.
    c = ZkRaw(HOST, bad_server.port)
    try:
        rep = c.request(zkraw.OP_CREATE, i32(1000) + b"/abc")  # path length runs past the frame
        assert rep.err == zkraw.MARSHALLINGERROR
        rep = c.request(zkraw.OP_GETDATA, i32(4) + b"/a")  # truncated string
        assert rep.err == zkraw.MARSHALLINGERROR
        assert c.exists("/")[0] == 0
    finally:
        c.close()
    # A frame shorter than a request header closes the connection.
    c = ZkRaw(HOST, bad_server.port)
    try:
        c.send_frame(b"\x00\x00")
        assert c.wait_closed()
    finally:
        c.close_socket()
    # An unknown opcode is answered with Unimplemented (-6), then the connection is closed.
    c = ZkRaw(HOST, bad_server.port)
    try:
        rep = c.request(9999, b"")
        assert rep.err == zkraw.UNIMPLEMENTED
        assert c.wait_closed()
    finally:
        c.close_socket()
    assert_still_serving(bad_server, witness, "after-malformed")


def test_truncated_frame_then_close(bad_server, witness):
    c = ZkRaw(HOST, bad_server.port)
    c.send_raw(i32(200) + i32(1) + i32(zkraw.OP_CREATE) + b"/bad/trunc")
    c.close_socket()
    s = raw_socket(bad_server)
    s.sendall(i32(44) + b"\x00" * 10)  # truncated connect request
    s.close()
    assert witness.exists("/bad/trunc") is None
    assert_still_serving(bad_server, witness, "after-trunc")


def test_max_client_cnxns_per_ip(make_server):
    s = make_server(cfg={"maxClientCnxns": "5"})
    held = []

    def one_more():
        # retried: the readiness probe's connection may still be counted for a moment
        try:
            c = ZkRaw(HOST, s.port, io_timeout=5)
        except (zkraw.ConnectionClosed, OSError):
            return None
        held.append(c)
        return c

    try:
        for _ in range(5):
            wait_for(one_more, timeout=15, msg="connection within maxClientCnxns")
        req = i32(0) + zkraw.i64(0) + i32(10000) + zkraw.i64(0) + zkraw.buf(b"\x00" * 16) + zkraw.boolean(False)
        try:
            extra = socket.create_connection((HOST, s.port), timeout=15)
        except ConnectionError:
            extra = None  # refused or reset during connect: closed at once
        if extra is not None:
            try:
                try:
                    extra.sendall(i32(len(req)) + req)
                except ConnectionError:
                    pass
                assert closed_by_server(extra), "connection over maxClientCnxns was not closed"
            finally:
                extra.close()
        for c in held:  # the first five are unaffected
            assert c.exists("/")[0] == 0
        held.pop().close()
        wait_for(one_more, timeout=15, msg="a slot frees up after a close")
        assert held[-1].exists("/")[0] == 0
    finally:
        for c in held:
            c.close()
