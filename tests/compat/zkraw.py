"""A minimal, synchronous ZooKeeper wire-protocol client for the compat tests.

kazoo 2.11 has no API for containers, TTL nodes, addWatch, multiRead,
getEphemerals, getAllChildrenNumber or whoAmI, and it hides the exact order of
frames on the socket. This client speaks jute directly on one socket, so tests
can see every reply and notification in the order the server sent them, send
malformed frames, or simply stop pinging.
"""

import socket
import struct
import time

# Opcodes (ZooDefs.OpCode)
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GETDATA = 4
OP_SETDATA = 5
OP_GETACL = 6
OP_SETACL = 7
OP_GETCHILDREN = 8
OP_SYNC = 9
OP_PING = 11
OP_GETCHILDREN2 = 12
OP_CHECK = 13
OP_MULTI = 14
OP_CREATE2 = 15
OP_CHECKWATCHES = 17
OP_REMOVEWATCHES = 18
OP_CREATECONTAINER = 19
OP_CREATETTL = 21
OP_MULTIREAD = 22
OP_AUTH = 100
OP_SETWATCHES = 101
OP_GETEPHEMERALS = 103
OP_GETALLCHILDRENNUMBER = 104
OP_ADDWATCH = 106
OP_WHOAMI = 107
OP_CLOSE = -11

# Create modes
PERSISTENT = 0
EPHEMERAL = 1
PERSISTENT_SEQUENTIAL = 2
EPHEMERAL_SEQUENTIAL = 3
CONTAINER = 4
PERSISTENT_WITH_TTL = 5
PERSISTENT_SEQUENTIAL_WITH_TTL = 6

# addWatch modes
ADD_WATCH_PERSISTENT = 0
ADD_WATCH_PERSISTENT_RECURSIVE = 1

# Watcher event types
EV_NODE_CREATED = 1
EV_NODE_DELETED = 2
EV_NODE_DATA_CHANGED = 3
EV_NODE_CHILDREN_CHANGED = 4

# Error codes
OK = 0
SYSTEMERROR = -1
RUNTIMEINCONSISTENCY = -2
MARSHALLINGERROR = -5
UNIMPLEMENTED = -6
BADARGUMENTS = -8
NONODE = -101
NOAUTH = -102
BADVERSION = -103
NOCHILDRENFOREPHEMERALS = -108
NODEEXISTS = -110
NOTEMPTY = -111
INVALIDACL = -114

PERM_ALL = 31
WORLD_ANYONE = [(PERM_ALL, "world", "anyone")]

NOTIFICATION_XID = -1
PING_XID = -2
AUTH_XID = -4
SET_WATCHES_XID = -8


class ConnectionClosed(Exception):
    pass


# ---------------------------------------------------------------- encoding


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def buf(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def string(s):
    if s is None:
        return i32(-1)
    return buf(s.encode("utf-8") if isinstance(s, str) else s)


def acl_vec(acls):
    out = i32(len(acls))
    for perms, scheme, ident in acls:
        out += i32(perms) + string(scheme) + string(ident)
    return out


def str_vec(items):
    out = i32(len(items))
    for s in items:
        out += string(s)
    return out


class Reader:
    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def i32(self):
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def i64(self):
        (v,) = struct.unpack_from(">q", self.data, self.pos)
        self.pos += 8
        return v

    def boolean(self):
        v = self.data[self.pos] != 0
        self.pos += 1
        return v

    def buf(self):
        n = self.i32()
        if n < 0:
            return None
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def string(self):
        b = self.buf()
        return None if b is None else b.decode("utf-8")

    def str_vec(self):
        n = self.i32()
        return [self.string() for _ in range(max(n, 0))]

    def stat(self):
        names = [
            ("czxid", "q"),
            ("mzxid", "q"),
            ("ctime", "q"),
            ("mtime", "q"),
            ("version", "i"),
            ("cversion", "i"),
            ("aversion", "i"),
            ("ephemeralOwner", "q"),
            ("dataLength", "i"),
            ("numChildren", "i"),
            ("pzxid", "q"),
        ]
        out = {}
        for name, kind in names:
            out[name] = self.i64() if kind == "q" else self.i32()
        return out

    def acl_vec(self):
        n = self.i32()
        return [(self.i32(), self.string(), self.string()) for _ in range(n)]

    def remaining(self):
        return len(self.data) - self.pos


class Reply:
    def __init__(self, xid, zxid, err, body):
        self.xid = xid
        self.zxid = zxid
        self.err = err
        self.body = body

    def reader(self):
        return Reader(self.body)


class ZkRaw:
    """One ZooKeeper session over one socket; everything is synchronous.

    `frames` records every frame received, in order, as ("event", type, state,
    path) or ("reply", xid, err), so tests can assert on ordering.
    """

    def __init__(self, host, port, timeout_ms=10000, session_id=0, passwd=b"\x00" * 16,
                 connect=True, io_timeout=15.0):
        self.host = host
        self.port = port
        self.io_timeout = io_timeout
        self.sock = socket.create_connection((host, port), timeout=io_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.xid = 0
        self.events = []
        self.frames = []
        self.session_id = None
        self.passwd = None
        self.negotiated_timeout = None
        if connect:
            self.connect(timeout_ms, session_id, passwd)

    # ----------------------------------------------------------- framing

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.sock.sendall(i32(len(payload)) + payload)

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionClosed("server closed the connection")
            out += chunk
        return out

    def recv_frame(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    def wait_closed(self, timeout=15.0):
        """True once the server has closed this connection (EOF or reset)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not data:
                return True
        return False

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ---------------------------------------------------------- session

    def connect(self, timeout_ms=10000, session_id=0, passwd=b"\x00" * 16, last_zxid=0):
        req = i32(0) + i64(last_zxid) + i32(timeout_ms) + i64(session_id) + buf(passwd) + boolean(False)
        self.send_frame(req)
        r = Reader(self.recv_frame())
        r.i32()  # protocol version
        self.negotiated_timeout = r.i32()
        self.session_id = r.i64()
        self.passwd = r.buf()
        return self.negotiated_timeout, self.session_id, self.passwd

    def request(self, op, body=b"", xid=None):
        """Send one request and read frames until its reply; returns Reply."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_frame(i32(xid) + i32(op) + body)
        while True:
            frame = self.recv_frame()
            r = Reader(frame)
            rxid, zxid, err = r.i32(), r.i64(), r.i32()
            if rxid == NOTIFICATION_XID:
                ev = (r.i32(), r.i32(), r.string())
                self.events.append(ev)
                self.frames.append(("event",) + ev)
                continue
            self.frames.append(("reply", rxid, err))
            if rxid == xid:
                return Reply(rxid, zxid, err, frame[r.pos :])
            if rxid == PING_XID:
                continue
            raise AssertionError(f"unexpected reply xid {rxid} while waiting for {xid}")

    def poll_events(self, timeout):
        """Read frames for up to `timeout` seconds (stops early once an event arrives)."""
        deadline = time.monotonic() + timeout
        got = []
        while time.monotonic() < deadline and not got:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                frame = self.recv_frame()
            except socket.timeout:
                break
            finally:
                self.sock.settimeout(self.io_timeout)
            r = Reader(frame)
            rxid, _zxid, _err = r.i32(), r.i64(), r.i32()
            if rxid == NOTIFICATION_XID:
                ev = (r.i32(), r.i32(), r.string())
                self.events.append(ev)
                self.frames.append(("event",) + ev)
                got.append(ev)
        return got

    def ping(self):
        return self.request(OP_PING, xid=PING_XID)

    def close(self):
        try:
            self.request(OP_CLOSE)
        except (ConnectionClosed, OSError):
            pass
        self.close_socket()

    # --------------------------------------------------------- requests

    def create(self, path, data=b"", acl=WORLD_ANYONE, flags=PERSISTENT, ttl=None, op=None):
        """create2/createContainer/createTTL; returns (err, path, stat)."""
        if op is None:
            if ttl is not None:
                op = OP_CREATETTL
            elif flags == CONTAINER:
                op = OP_CREATECONTAINER
            else:
                op = OP_CREATE2
        body = string(path) + buf(data) + acl_vec(acl) + i32(flags)
        if op == OP_CREATETTL:
            body += i64(ttl)
        rep = self.request(op, body)
        if rep.err != OK:
            return rep.err, None, None
        r = rep.reader()
        created = r.string()
        stat = r.stat() if op != OP_CREATE else None
        return rep.err, created, stat

    def delete(self, path, version=-1):
        return self.request(OP_DELETE, string(path) + i32(version)).err

    def exists(self, path, watch=False):
        rep = self.request(OP_EXISTS, string(path) + boolean(watch))
        return rep.err, (rep.reader().stat() if rep.err == OK else None)

    def get_data(self, path, watch=False):
        rep = self.request(OP_GETDATA, string(path) + boolean(watch))
        if rep.err != OK:
            return rep.err, None, None
        r = rep.reader()
        return rep.err, r.buf(), r.stat()

    def set_data(self, path, data, version=-1):
        rep = self.request(OP_SETDATA, string(path) + buf(data) + i32(version))
        return rep.err, (rep.reader().stat() if rep.err == OK else None)

    def get_children(self, path, watch=False):
        rep = self.request(OP_GETCHILDREN2, string(path) + boolean(watch))
        if rep.err != OK:
            return rep.err, None, None
        r = rep.reader()
        return rep.err, r.str_vec(), r.stat()

    def get_acl(self, path):
        rep = self.request(OP_GETACL, string(path))
        if rep.err != OK:
            return rep.err, None, None
        r = rep.reader()
        return rep.err, r.acl_vec(), r.stat()

    def sync(self, path):
        rep = self.request(OP_SYNC, string(path))
        return rep.err, (rep.reader().string() if rep.err == OK else None)

    def add_auth(self, scheme, auth):
        rep = self.request(OP_AUTH, i32(0) + string(scheme) + buf(auth), xid=AUTH_XID)
        return rep.err

    def add_watch(self, path, mode):
        return self.request(OP_ADDWATCH, string(path) + i32(mode)).err

    def remove_watches(self, path, wtype):
        return self.request(OP_REMOVEWATCHES, string(path) + i32(wtype)).err

    def check_watches(self, path, wtype):
        return self.request(OP_CHECKWATCHES, string(path) + i32(wtype)).err

    def set_watches(self, relative_zxid, data=(), exist=(), child=()):
        body = i64(relative_zxid) + str_vec(list(data)) + str_vec(list(exist)) + str_vec(list(child))
        return self.request(OP_SETWATCHES, body, xid=SET_WATCHES_XID).err

    def get_ephemerals(self, prefix):
        rep = self.request(OP_GETEPHEMERALS, string(prefix))
        return rep.err, (rep.reader().str_vec() if rep.err == OK else None)

    def get_all_children_number(self, path):
        rep = self.request(OP_GETALLCHILDRENNUMBER, string(path))
        return rep.err, (rep.reader().i32() if rep.err == OK else None)

    def who_am_i(self):
        rep = self.request(OP_WHOAMI)
        if rep.err != OK:
            return rep.err, None
        r = rep.reader()
        n = r.i32()
        return rep.err, [(r.string(), r.string()) for _ in range(n)]

    def multi_read(self, ops):
        """ops: list of ("get", path) / ("children", path). Returns (err, results)
        where each result is ("get", data, stat) / ("children", names) / ("error", code)."""
        body = b""
        for kind, path in ops:
            op = OP_GETDATA if kind == "get" else OP_GETCHILDREN
            body += i32(op) + boolean(False) + i32(-1) + string(path) + boolean(False)
        body += i32(-1) + boolean(True) + i32(-1)
        rep = self.request(OP_MULTIREAD, body)
        if rep.err != OK:
            return rep.err, None
        return rep.err, _read_multi_results(rep.reader())

    def multi(self, ops):
        """ops: ("create", path, data, flags) / ("delete", path, version) /
        ("set", path, data, version) / ("check", path, version)."""
        body = b""
        for op in ops:
            kind = op[0]
            if kind == "create":
                _, path, data, flags = op
                body += i32(OP_CREATE) + boolean(False) + i32(-1)
                body += string(path) + buf(data) + acl_vec(WORLD_ANYONE) + i32(flags)
            elif kind == "delete":
                body += i32(OP_DELETE) + boolean(False) + i32(-1) + string(op[1]) + i32(op[2])
            elif kind == "set":
                body += i32(OP_SETDATA) + boolean(False) + i32(-1) + string(op[1]) + buf(op[2]) + i32(op[3])
            elif kind == "check":
                body += i32(OP_CHECK) + boolean(False) + i32(-1) + string(op[1]) + i32(op[2])
            else:
                raise ValueError(kind)
        body += i32(-1) + boolean(True) + i32(-1)
        rep = self.request(OP_MULTI, body)
        if rep.err != OK:
            return rep.err, None
        return rep.err, _read_multi_results(rep.reader())


def _read_multi_results(r):
    results = []
    while True:
        typ, done, err = r.i32(), r.boolean(), r.i32()
        if done:
            break
        if typ == -1:
            results.append(("error", r.i32()))
        elif typ == OP_GETDATA:
            results.append(("get", r.buf(), r.stat()))
        elif typ == OP_GETCHILDREN:
            results.append(("children", r.str_vec()))
        elif typ == OP_CREATE:
            results.append(("create", r.string()))
        elif typ in (OP_CREATE2, OP_CREATECONTAINER, OP_CREATETTL):
            results.append(("create", r.string(), r.stat()))
        elif typ == OP_SETDATA:
            results.append(("set", r.stat()))
        elif typ in (OP_DELETE, OP_CHECK):
            results.append(("delete" if typ == OP_DELETE else "check",))
        else:
            raise AssertionError(f"unknown multi result type {typ}")
    return results


def handshake_ok(host, port, timeout=1.0):
    """True when a full ZooKeeper session handshake succeeds (used as readiness probe)."""
    try:
        c = ZkRaw(host, port, timeout_ms=4000, io_timeout=timeout)
    except (OSError, ConnectionClosed, struct.error):
        return False
    try:
        ok = c.session_id not in (None, 0)
        c.close()
        return ok
    except (OSError, ConnectionClosed):
        return False
