"""Conformance through kazoo 2.11 (and, where kazoo has no API, the raw jute client).

Every assertion here was validated against Apache ZooKeeper 3.8 (Debian).
"""

import os
import signal
import subprocess
import sys
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    InvalidACLError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.security import ACL, Id, Permissions, make_digest_acl, make_digest_acl_credential

import zkraw
from conftest import CONFORMANCE_CFG, SUPER_PASSWORD, wait_for
from zkraw import ZkRaw
from zkserver import HOST


@pytest.fixture
def zk(server):
    c = KazooClient(hosts=server.hosts, timeout=10.0)
    c.start(timeout=30)
    yield c
    c.stop()
    c.close()


def new_client(server, **kw):
    c = KazooClient(hosts=server.hosts, timeout=kw.pop("timeout", 10.0), **kw)
    c.start(timeout=30)
    return c


def raw(server, **kw):
    return ZkRaw(HOST, server.port, **kw)


# ------------------------------------------------------------------ CRUD


def test_create_get_set_delete_with_versions(zk, base):
    path = zk.create(base, b"v0")
    assert path == base
    data, st = zk.get(base)
    assert data == b"v0" and st.version == 0 and st.dataLength == 2
    with pytest.raises(NodeExistsError):
        zk.create(base, b"again")
    st1 = zk.set(base, b"v1", version=0)
    assert st1.version == 1
    with pytest.raises(BadVersionError):
        zk.set(base, b"v2", version=0)
    assert zk.get(base)[0] == b"v1"
    st2 = zk.set(base, b"v2")  # -1 matches any version
    assert st2.version == 2
    zk.create(base + "/child")
    with pytest.raises(NotEmptyError):
        zk.delete(base)
    with pytest.raises(BadVersionError):
        zk.delete(base + "/child", version=3)
    zk.delete(base + "/child", version=0)
    with pytest.raises(BadVersionError):
        zk.delete(base, version=1)
    zk.delete(base, version=2)
    assert zk.exists(base) is None
    with pytest.raises(NoNodeError):
        zk.get(base)
    with pytest.raises(NoNodeError):
        zk.set(base, b"x")
    with pytest.raises(NoNodeError):
        zk.delete(base)
    with pytest.raises(NoNodeError):
        zk.create(base + "/no/parent")
    with pytest.raises(NoNodeError):
        zk.get_children(base)


def test_empty_and_binary_data(zk, base):
    zk.create(base)
    assert zk.get(base)[0] == b""
    blob = bytes(range(256)) * 4
    zk.set(base, blob)
    data, st = zk.get(base)
    assert data == blob and st.dataLength == len(blob)


def test_stat_fields(zk, server, base):
    zk.create(base, b"abc")
    _, st = zk.get(base)
    assert st.czxid == st.mzxid == st.pzxid
    assert st.ctime == st.mtime and st.ctime > 0
    assert (st.version, st.cversion, st.aversion, st.numChildren) == (0, 0, 0, 0)
    assert st.dataLength == 3 and st.ephemeralOwner == 0

    zk.create(base + "/c1")
    _, cst = zk.get(base + "/c1")
    _, pst = zk.get(base)
    assert pst.cversion == 1 and pst.numChildren == 1
    assert pst.pzxid == cst.czxid
    assert pst.mzxid == st.mzxid and pst.version == 0  # children do not touch data

    sst = zk.set(base, b"abcd")
    assert sst.mzxid > cst.czxid and sst.czxid == st.czxid and sst.version == 1
    assert sst.dataLength == 4 and sst.mtime >= st.mtime
    assert sst.pzxid == cst.czxid

    zk.delete(base + "/c1")
    _, pst2 = zk.get(base)
    assert pst2.cversion == 2 and pst2.numChildren == 0
    assert pst2.pzxid > sst.mzxid  # the delete's zxid
    assert pst2.mzxid == sst.mzxid

    # create2 returns the same stat a later read sees
    r = raw(server)
    try:
        err, p, cstat = r.create(base + "/c2", b"xy")
        assert err == 0 and p == base + "/c2"
        err, _, gstat = r.get_data(base + "/c2")
        assert gstat == cstat
    finally:
        r.close()


def test_sequential_names_follow_parent_cversion(zk, base):
    # Apache stores in the parent a counter of child creates (deletes do not
    # bump it); the sequence suffix is that counter, %010d. The cversion a
    # client sees in Stat is creates + deletes (Apache reports 2*creates -
    # numChildren).
    zk.create(base)
    a = zk.create(base + "/n-", sequence=True)
    b = zk.create(base + "/n-", sequence=True)
    assert (a, b) == (base + "/n-0000000000", base + "/n-0000000001")
    zk.create(base + "/plain")  # third create
    zk.delete(a)
    assert zk.get(base)[1].cversion == 4
    c = zk.create(base + "/n-", sequence=True)
    assert c == base + "/n-0000000003"
    d = zk.create(base + "/", sequence=True)  # empty prefix
    assert d == base + "/0000000004"
    e = zk.create(base + "/eph-", ephemeral=True, sequence=True)
    assert e == base + "/eph-0000000005"
    _, st = zk.get(base)
    assert st.cversion == 7 and st.numChildren == 5
    assert sorted(zk.get_children(base)) == sorted(
        ["n-0000000001", "plain", "n-0000000003", "0000000004", "eph-0000000005"]
    )
    for child in zk.get_children(base):
        zk.delete(base + "/" + child)
    assert zk.get(base)[1].cversion == 12
    assert zk.create(base + "/n-", sequence=True) == base + "/n-0000000006"
    # a failed create does not consume a number
    with pytest.raises(NoNodeError):
        zk.create(base + "/missing/n-", sequence=True)
    assert zk.create(base + "/n-", sequence=True) == base + "/n-0000000007"


def test_bad_paths_are_bad_arguments(zk, server, base):
    zk.create(base)
    r = raw(server)
    try:
        # Rejected by path validation on create.
        for p in ["a", base + "/", base + "/.", base + "/..", base + "/x\x00y", "", base + "/x\x7f",
                  base + "/\uffff"]:
            assert r.create(p, b"")[0] == zkraw.BADARGUMENTS, repr(p)
        # Apache 3.8 checks that the parent exists before validating the whole
        # path, so an empty or "." component inside the parent part is NoNode.
        for p in [base + "//b", base + "/./b", base + "/../b"]:
            assert r.create(p, b"")[0] == zkraw.NONODE, repr(p)
        # setData validates the path; reads just look it up.
        for p in ["a", base + "/", base + "//b", base + "/./b", base + "/x\x00y"]:
            assert r.set_data(p, b"")[0] == zkraw.BADARGUMENTS, repr(p)
            assert r.get_data(p)[0] == zkraw.NONODE, repr(p)
        assert r.exists(base + "/x\x00y")[0] == zkraw.BADARGUMENTS
        assert r.exists("a")[0] == zkraw.NONODE
        assert r.delete("a") == zkraw.BADARGUMENTS
        assert r.delete("/") == zkraw.BADARGUMENTS
        assert r.delete("/zookeeper") == zkraw.BADARGUMENTS
        assert r.create("/", b"")[0] == zkraw.NODEEXISTS
    finally:
        r.close()
    with pytest.raises(BadArgumentsError):
        zk.create(base + "/a\x00")


def test_zookeeper_system_nodes(zk):
    assert {"config", "quota"} <= set(zk.get_children("/zookeeper"))
    assert zk.exists("/zookeeper/quota") is not None
    data, _ = zk.get("/zookeeper/config")
    assert data == b""  # standalone: no dynamic config
    with pytest.raises(NoAuthError):
        zk.set("/zookeeper/config", b"x")
    assert "zookeeper" in zk.get_children("/")


# ------------------------------------------------------------ ephemerals


def test_ephemeral_rules_and_close(server, zk, base):
    zk.create(base)
    owner = new_client(server)
    try:
        owner.create(base + "/e", b"x", ephemeral=True)
        _, st = zk.get(base + "/e")
        assert st.ephemeralOwner == owner.client_id[0]
        with pytest.raises(NoChildrenForEphemeralsError):
            owner.create(base + "/e/child")
    finally:
        owner.stop()
        owner.close()
    # close is synchronous: the ephemeral is gone once the close returned
    wait_for(lambda: zk.exists(base + "/e") is None, timeout=10, msg="ephemeral removed on close")


def test_ephemeral_removed_on_session_expiry(server, zk, base):
    zk.create(base)
    r = raw(server, timeout_ms=1000)
    assert 1000 <= r.negotiated_timeout <= 2000
    assert r.create(base + "/e", b"", flags=zkraw.EPHEMERAL)[0] == 0
    # the raw client never pings: the server must expire the session and close the socket
    assert r.wait_closed(timeout=20), "server did not close the expired session's connection"
    wait_for(lambda: zk.exists(base + "/e") is None, timeout=10, msg="ephemeral removed on expiry")
    r.close_socket()
    # resuming an expired session fails: timeout 0 in the response, then close
    r2 = ZkRaw(HOST, server.port, connect=False)
    try:
        timeout, sid, _ = r2.connect(timeout_ms=1000, session_id=r.session_id, passwd=r.passwd)
        assert timeout == 0
        assert r2.wait_closed(timeout=10)
    finally:
        r2.close_socket()


def test_session_resume_keeps_ephemerals(server, zk, base):
    zk.create(base)
    r = raw(server, timeout_ms=20000)
    assert r.create(base + "/e", b"", flags=zkraw.EPHEMERAL)[0] == 0
    sid, pw = r.session_id, r.passwd
    r.close_socket()  # drop the connection without closing the session
    c = KazooClient(hosts=server.hosts, client_id=(sid, pw), timeout=20.0)
    c.start(timeout=30)
    try:
        assert c.client_id[0] == sid
        _, st = c.get(base + "/e")
        assert st.ephemeralOwner == sid
    finally:
        c.stop()  # closes the session
        c.close()
    wait_for(lambda: zk.exists(base + "/e") is None, timeout=10, msg="ephemeral removed on close")


def test_resume_with_wrong_password_is_refused(server):
    r = raw(server, timeout_ms=20000)
    try:
        r2 = ZkRaw(HOST, server.port, connect=False)
        bad = bytes(b ^ 0xFF for b in r.passwd)
        timeout, sid, _ = r2.connect(timeout_ms=20000, session_id=r.session_id, passwd=bad)
        assert timeout == 0 and sid == 0
        assert r2.wait_closed(timeout=10)
        r2.close_socket()
        # Apache quirk: a reconnect attempt for a session closes the session's
        # current connection before the password is checked. The session
        # itself survives and resumes with the right password.
        assert r.wait_closed(timeout=10)
        r.close_socket()
        r3 = ZkRaw(HOST, server.port, connect=False)
        timeout, sid, _ = r3.connect(timeout_ms=20000, session_id=r.session_id, passwd=r.passwd)
        assert timeout == 20000 and sid == r.session_id
        assert r3.exists("/")[0] == 0
        r3.close()
    finally:
        r.close_socket()


def test_session_timeout_negotiation(server):
    lo = raw(server, timeout_ms=10)
    hi = raw(server, timeout_ms=10_000_000)
    try:
        assert lo.negotiated_timeout == 1000  # minSessionTimeout
        assert hi.negotiated_timeout == 30000  # maxSessionTimeout
    finally:
        lo.close()
        hi.close()


# ------------------------------------------------------ containers / TTL


def test_container_removed_after_last_child(server, zk, base):
    zk.create(base)
    r = raw(server)
    try:
        err, p, st = r.create(base + "/c", b"", flags=zkraw.CONTAINER)
        assert err == 0 and p == base + "/c"
        assert st["ephemeralOwner"] == 0  # Apache hides the container marker in Stat
        err, _, _ = r.create(base + "/never", b"", flags=zkraw.CONTAINER)
        assert err == 0
        assert r.create(base + "/c/a", b"")[0] == 0
        assert r.create(base + "/c/b", b"")[0] == 0
        assert r.delete(base + "/c/a") == 0
        assert r.exists(base + "/c")[0] == 0
        assert r.delete(base + "/c/b") == 0
        wait_for(lambda: zk.exists(base + "/c") is None, timeout=15, msg="empty container reaped")
        # a container that never had a child is kept (maxNeverUsedIntervalMs=0)
        assert zk.exists(base + "/never") is not None
    finally:
        r.close()


def test_ttl_nodes(server, zk, base):
    zk.create(base)
    r = raw(server)
    try:
        err, p, st = r.create(base + "/t", b"d", flags=zkraw.PERSISTENT_WITH_TTL, ttl=300)
        assert err == 0 and st["ephemeralOwner"] == 0
        err, p2, _ = r.create(base + "/s-", b"", flags=zkraw.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=300)
        assert err == 0 and p2 == base + "/s-0000000001"
        assert r.create(base + "/kept", b"", flags=zkraw.PERSISTENT_WITH_TTL, ttl=300)[0] == 0
        assert r.create(base + "/kept/child", b"")[0] == 0
        # invalid TTL requests
        assert r.create(base + "/z", b"", flags=zkraw.PERSISTENT_WITH_TTL, ttl=0)[0] == zkraw.BADARGUMENTS
        assert r.create(base + "/z", b"", flags=zkraw.PERSISTENT, ttl=100)[0] == zkraw.BADARGUMENTS
        assert r.create(base + "/z", b"", flags=zkraw.EPHEMERAL, ttl=100)[0] == zkraw.BADARGUMENTS
        wait_for(lambda: zk.exists(base + "/t") is None and zk.exists(p2) is None, timeout=15,
                 msg="expired TTL nodes reaped")
        # the same reaper pass saw /kept: it has a child, so it stays
        assert zk.exists(base + "/kept") is not None
        zk.delete(base + "/kept/child")
        wait_for(lambda: zk.exists(base + "/kept") is None, timeout=15, msg="childless TTL node reaped")
    finally:
        r.close()


def test_ttl_disabled_without_extended_types(make_server):
    s = make_server(cfg={})
    r = ZkRaw(HOST, s.port)
    try:
        assert r.create("/t", b"", flags=zkraw.PERSISTENT_WITH_TTL, ttl=1000)[0] == zkraw.UNIMPLEMENTED
        assert r.create("/c", b"", flags=zkraw.CONTAINER)[0] == 0
    finally:
        r.close()


# --------------------------------------------------------------- watches


def test_one_shot_watches_fire_once_with_kazoo(zk, server, base):
    zk.create(base, b"0")
    other = new_client(server)
    try:
        data_events, child_events, exist_events = [], [], []
        ev_d, ev_c, ev_e = threading.Event(), threading.Event(), threading.Event()
        zk.get(base, watch=lambda e: (data_events.append(e), ev_d.set()))
        zk.get_children(base, watch=lambda e: (child_events.append(e), ev_c.set()))
        zk.exists(base + "/new", watch=lambda e: (exist_events.append(e), ev_e.set()))
        other.set(base, b"1")
        other.create(base + "/new")
        assert ev_d.wait(10) and ev_c.wait(10) and ev_e.wait(10)
        assert [(e.type, e.path) for e in data_events] == [("CHANGED", base)]
        assert [(e.type, e.path) for e in child_events] == [("CHILD", base)]
        assert [(e.type, e.path) for e in exist_events] == [("CREATED", base + "/new")]
    finally:
        other.stop()
        other.close()


def test_one_shot_watch_rules_raw(server, base):
    """Exactly-once and trigger rules, observed on the socket in order."""
    a, b = raw(server), raw(server)
    try:
        assert b.create(base, b"0")[0] == 0
        assert b.create(base + "/x", b"")[0] == 0
        assert a.get_data(base, watch=True)[0] == 0
        assert a.get_children(base, watch=True)[0] == 0
        assert a.exists(base + "/gone", watch=True)[0] == zkraw.NONODE  # exists watch on missing node
        assert a.exists(base + "/x", watch=True)[0] == 0
        b.set_data(base, b"1")
        b.set_data(base, b"2")  # second change: no second data event
        b.create(base + "/gone", b"")
        b.delete(base + "/gone")
        b.set_data(base + "/x", b"q")
        b.delete(base + "/x")
        a.sync("/")
        a.exists("/")
        assert a.events == [
            (zkraw.EV_NODE_DATA_CHANGED, 3, base),
            (zkraw.EV_NODE_CREATED, 3, base + "/gone"),
            (zkraw.EV_NODE_CHILDREN_CHANGED, 3, base),
            (zkraw.EV_NODE_DATA_CHANGED, 3, base + "/x"),
        ]
        a.events.clear()
        # a getData watch fires NodeDeleted on delete; a child watch fires on the parent's delete
        assert b.create(base + "/y", b"")[0] == 0
        assert a.get_data(base + "/y", watch=True)[0] == 0
        assert a.get_children(base + "/y", watch=True)[0] == 0
        b.delete(base + "/y")
        a.exists("/")
        assert a.events == [(zkraw.EV_NODE_DELETED, 3, base + "/y")]
        # removing a watch that is not there
        assert a.remove_watches(base, 3) == -121
    finally:
        a.close()
        b.close()


def test_notification_precedes_the_response_showing_the_change(server, base):
    a, b = raw(server), raw(server)
    try:
        b.create(base, b"old")
        for i in range(20):
            a.frames.clear()
            assert a.get_data(base, watch=True)[0] == 0
            assert b.set_data(base, b"v%d" % i)[0] == 0
            err, data, _ = a.get_data(base)
            assert data == b"v%d" % i
            kinds = [f[0] for f in a.frames]
            assert kinds == ["reply", "event", "reply"], a.frames
    finally:
        a.close()
        b.close()


def test_persistent_watch(server, base):
    a, b = raw(server), raw(server)
    try:
        assert a.add_watch(base, zkraw.ADD_WATCH_PERSISTENT) == 0  # on a missing node
        b.create(base, b"")
        b.create(base + "/c", b"")
        b.set_data(base, b"1")
        b.create(base + "/c/deep", b"")  # not the watched node or its child list
        b.delete(base + "/c/deep")
        b.delete(base + "/c")
        b.delete(base)
        b.create(base, b"")
        a.exists("/")
        assert a.events == [
            (zkraw.EV_NODE_CREATED, 3, base),
            (zkraw.EV_NODE_CHILDREN_CHANGED, 3, base),
            (zkraw.EV_NODE_DATA_CHANGED, 3, base),
            (zkraw.EV_NODE_CHILDREN_CHANGED, 3, base),
            (zkraw.EV_NODE_DELETED, 3, base),
            (zkraw.EV_NODE_CREATED, 3, base),
        ]
        assert a.remove_watches(base, 3) == 0
        b.set_data(base, b"2")
        a.exists("/")
        assert len(a.events) == 6
    finally:
        a.close()
        b.close()


def test_persistent_recursive_watch(server, base):
    a, b = raw(server), raw(server)
    try:
        assert a.add_watch(base, zkraw.ADD_WATCH_PERSISTENT_RECURSIVE) == 0
        b.create(base, b"")
        b.create(base + "/a", b"")
        b.create(base + "/a/b", b"")
        b.set_data(base + "/a/b", b"z")
        b.delete(base + "/a/b")
        b.create(base + "x", b"")  # sibling with a common prefix: not below the watch
        b.delete(base + "x")
        a.exists("/")
        # no NodeChildrenChanged events for recursive watches
        assert a.events == [
            (zkraw.EV_NODE_CREATED, 3, base),
            (zkraw.EV_NODE_CREATED, 3, base + "/a"),
            (zkraw.EV_NODE_CREATED, 3, base + "/a/b"),
            (zkraw.EV_NODE_DATA_CHANGED, 3, base + "/a/b"),
            (zkraw.EV_NODE_DELETED, 3, base + "/a/b"),
        ]
    finally:
        a.close()
        b.close()


def test_watches_restored_by_set_watches_after_reconnect(server, base):
    b = raw(server)
    a = raw(server, timeout_ms=20000)
    try:
        b.create(base, b"0")
        _, _, st = a.get_data(base)
        sid, pw = a.session_id, a.passwd
        a.close_socket()
        b.set_data(base, b"1")  # changed while the watcher was away
        a2 = ZkRaw(HOST, server.port, connect=False)
        a2.connect(timeout_ms=20000, session_id=sid, passwd=pw)
        assert a2.session_id == sid
        # re-register a data watch as of the last zxid the client saw: the server
        # fires it at once because the node changed after that zxid
        assert a2.set_watches(st["mzxid"], data=[base], exist=[base + "/nx"]) == 0
        a2.exists("/")
        assert a2.events == [(zkraw.EV_NODE_DATA_CHANGED, 3, base)]
        b.create(base + "/nx", b"")
        a2.exists("/")
        assert a2.events[-1] == (zkraw.EV_NODE_CREATED, 3, base + "/nx")
        a2.close()
    finally:
        b.close()


# ----------------------------------------------------------------- multi


def test_multi_all_or_nothing(zk, base):
    zk.create(base, b"0")
    t = zk.transaction()
    t.create(base + "/a", b"a")
    t.set_data(base, b"1", version=0)
    t.check(base, 1)
    t.create(base + "/b", b"b")
    t.delete(base + "/b")
    results = t.commit()
    assert results[0] == base + "/a" and results[3] == base + "/b"
    assert results[2] is True and results[4] is True
    assert results[1].version == 1
    assert zk.get_children(base) == ["a"]

    t = zk.transaction()
    t.create(base + "/c", b"")
    t.set_data(base, b"2", version=0)  # wrong version
    t.delete(base + "/a")
    results = t.commit()
    assert [type(r) for r in results] == [RolledBackError, BadVersionError, RuntimeInconsistency]
    assert zk.exists(base + "/c") is None and zk.exists(base + "/a") is not None
    assert zk.get(base)[0] == b"1"


def test_multi_raw_results(server, base):
    r = raw(server)
    try:
        err, res = r.multi([("create", base, b"", 0), ("create", base + "/s-", b"", zkraw.PERSISTENT_SEQUENTIAL),
                            ("check", base, 0)])
        assert err == 0
        assert res == [("create", base), ("create", base + "/s-0000000000"), ("check",)]
        err, res = r.multi([("check", base, 5), ("delete", base + "/nope", -1)])
        assert err == 0 and res == [("error", zkraw.BADVERSION), ("error", zkraw.RUNTIMEINCONSISTENCY)]
    finally:
        r.close()


def test_multi_read(server, base):
    r = raw(server)
    try:
        r.create(base, b"top")
        r.create(base + "/k", b"")
        err, res = r.multi_read([("get", base), ("children", base), ("get", base + "/nope"),
                                 ("children", base + "/nope")])
        assert err == 0
        assert res[0][0] == "get" and res[0][1] == b"top" and res[0][2]["numChildren"] == 1
        assert res[1] == ("children", ["k"])
        assert res[2:] == [("error", zkraw.NONODE), ("error", zkraw.NONODE)]
    finally:
        r.close()


# ------------------------------------------------------------------ ACLs


def test_world_read_only(zk, server, base):
    zk.create(base, b"x", acl=[ACL(Permissions.READ, Id("world", "anyone"))])
    assert zk.get(base)[0] == b"x"
    with pytest.raises(NoAuthError):
        zk.set(base, b"y")
    with pytest.raises(NoAuthError):
        zk.create(base + "/c")
    with pytest.raises(NoAuthError):
        zk.set_acls(base, [ACL(Permissions.ALL, Id("world", "anyone"))])


def test_digest_acl_and_super(zk, server, base):
    acl = make_digest_acl("alice", "secret", all=True)
    zk.create(base, b"private", acl=[acl])
    with pytest.raises(NoAuthError):
        zk.get(base)
    alice = new_client(server, auth_data=[("digest", "alice:secret")])
    wrong = new_client(server, auth_data=[("digest", "alice:nope")])
    su = new_client(server, auth_data=[("digest", "super:" + SUPER_PASSWORD)])
    try:
        assert alice.get(base)[0] == b"private"
        with pytest.raises(NoAuthError):
            wrong.get(base)
        assert su.get(base)[0] == b"private"
        su.set(base, b"by-super")
        acls, _ = su.get_acls(base)
        assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [
            (31, "digest", make_digest_acl_credential("alice", "secret"))
        ]
        zk.add_auth("digest", "alice:secret")
        assert zk.get(base)[0] == b"by-super"
    finally:
        for c in (alice, wrong, su):
            c.stop()
            c.close()


def test_auth_scheme_acl(zk, server, base):
    with pytest.raises(InvalidACLError):
        zk.create(base, acl=[ACL(Permissions.ALL, Id("auth", ""))])  # no credentials yet
    zk.add_auth("digest", "bob:pw")
    zk.create(base, acl=[ACL(Permissions.ALL, Id("auth", ""))])
    acls, _ = zk.get_acls(base)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [
        (31, "digest", make_digest_acl_credential("bob", "pw"))
    ]
    anon = new_client(server)
    try:
        with pytest.raises(NoAuthError):
            anon.get(base)
    finally:
        anon.stop()
        anon.close()


def test_ip_acl(zk, base):
    zk.create(base, acl=[ACL(Permissions.READ, Id("ip", "127.0.0.1"))])
    zk.get(base)
    zk.create(base + "x", acl=[ACL(Permissions.READ, Id("ip", "127.0.0.0/8")),
                               ACL(Permissions.ALL, Id("ip", "10.1.2.3"))])
    zk.get(base + "x")
    with pytest.raises(NoAuthError):
        zk.set(base + "x", b"")
    zk.create(base + "y", acl=[ACL(Permissions.ALL, Id("ip", "10.0.0.0/8"))])
    with pytest.raises(NoAuthError):
        zk.get(base + "y")


def test_invalid_acls(zk, server, base):
    for bad in ([ACL(31, Id("digest", "nocolon"))], [ACL(31, Id("foo", "x"))],
                [ACL(31, Id("ip", "not-an-ip"))], [ACL(31, Id("ip", "10.0.0.0/40"))],
                [ACL(31, Id("world", "someone"))], [ACL(31, Id("super", "x"))]):
        with pytest.raises(InvalidACLError):
            zk.create(base, acl=bad)
    assert zk.exists(base) is None
    # kazoo replaces an empty ACL list by its default, so send it raw
    r = raw(server)
    try:
        assert r.create(base, b"", acl=[])[0] == zkraw.INVALIDACL
    finally:
        r.close()


def test_get_set_acl_with_aversion(zk, base):
    zk.create(base)
    acls, st = zk.get_acls(base)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "world", "anyone")]
    assert st.aversion == 0
    st = zk.set_acls(base, [ACL(Permissions.ALL, Id("world", "anyone"))], version=0)
    assert st.aversion == 1 and st.version == 0
    with pytest.raises(BadVersionError):
        zk.set_acls(base, [ACL(Permissions.ALL, Id("world", "anyone"))], version=0)
    st = zk.set_acls(base, [ACL(Permissions.READ | Permissions.WRITE, Id("world", "anyone"))], version=1)
    assert st.aversion == 2
    # the ACL check comes before the version check
    with pytest.raises(NoAuthError):
        zk.set_acls(base, [ACL(Permissions.ALL, Id("world", "anyone"))], version=0)
    acls, _ = zk.get_acls(base)
    assert [(a.perms, a.id.scheme) for a in acls] == [(3, "world")]
    with pytest.raises(NoAuthError):
        zk.set_acls(base, [ACL(Permissions.ALL, Id("world", "anyone"))])  # lacks ADMIN now
    with pytest.raises(NoNodeError):
        zk.get_acls(base + "/none")


# ------------------------------------------------- misc requests


def test_sync(zk, base):
    zk.create(base)
    assert zk.sync(base) == base


def test_get_ephemerals_children_number_who_am_i(server, base):
    r = raw(server)
    other = raw(server)
    try:
        assert r.create(base, b"")[0] == 0
        assert r.create(base + "/p", b"")[0] == 0
        assert r.create(base + "/p/q", b"")[0] == 0
        assert r.create(base + "/e1", b"", flags=zkraw.EPHEMERAL)[0] == 0
        assert r.create(base + "/p/e2", b"", flags=zkraw.EPHEMERAL)[0] == 0
        assert other.create(base + "/e3", b"", flags=zkraw.EPHEMERAL)[0] == 0
        err, eph = r.get_ephemerals(base)
        assert err == 0 and sorted(eph) == [base + "/e1", base + "/p/e2"]
        assert r.get_ephemerals(base + "/p") == (0, [base + "/p/e2"])
        assert r.get_all_children_number(base) == (0, 5)
        assert r.get_all_children_number(base + "/p") == (0, 2)
        assert r.get_all_children_number(base + "/none")[0] == zkraw.NONODE
        assert r.who_am_i() == (0, [("ip", "127.0.0.1")])
        assert r.add_auth("digest", b"carol:pw") == 0
        err, who = r.who_am_i()
        assert err == 0 and sorted(who) == [("digest", "carol"), ("ip", "127.0.0.1")]  # order not defined
    finally:
        r.close()
        other.close()


# ------------------------------------------- real kazoo clients, frozen or reconnecting

FROZEN_CLIENT = r"""
import sys, time
from kazoo.client import KazooClient
c = KazooClient(hosts=sys.argv[1], timeout=1.0)
c.start(timeout=30)
c.create(sys.argv[2], b"", ephemeral=True)
print("ready", flush=True)
time.sleep(600)
"""


def test_kazoo_client_frozen_by_sigstop_expires(server, zk, base):
    zk.create(base)
    p = subprocess.Popen([sys.executable, "-c", FROZEN_CLIENT, server.hosts, base + "/e"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert p.stdout.readline().strip() == b"ready"
        assert zk.exists(base + "/e").ephemeralOwner != 0
        os.kill(p.pid, signal.SIGSTOP)  # no more pings; the TCP connection stays open
        wait_for(lambda: zk.exists(base + "/e") is None, timeout=20, msg="frozen client's session expired")
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        p.stdout.close()


def test_session_and_watches_survive_server_restart(make_server):
    """Sessions are durable: after kill -9 and restart, kazoo reconnects with its
    session id and keeps its ephemeral. (kazoo 2.11 drops its watches on a
    disconnect instead of sending SetWatches, so the watch part uses the raw
    client: SetWatches after the restart re-arms the watch.)"""
    s = make_server(cfg=CONFORMANCE_CFG)
    c = KazooClient(hosts=s.hosts, timeout=30.0)
    c.start(timeout=30)
    w = ZkRaw(HOST, s.port, timeout_ms=30000)
    other = None
    try:
        c.create("/r", b"0")
        c.create("/r/eph", ephemeral=True)
        sid = c.client_id[0]
        _, _, st = w.get_data("/r", watch=True)
        s.kill()
        w.close_socket()
        s.start()
        other = new_client(s)
        # the session (and its ephemeral) came back from disk
        assert other.exists("/r/eph").ephemeralOwner == sid
        wait_for(lambda: c.connected, timeout=30, msg="kazoo reconnected")
        assert c.client_id[0] == sid
        assert c.get("/r/eph")[1].ephemeralOwner == sid
        w2 = ZkRaw(HOST, s.port, connect=False)
        timeout, wsid, _ = w2.connect(timeout_ms=30000, session_id=w.session_id, passwd=w.passwd)
        assert wsid == w.session_id and timeout == 30000
        assert w2.set_watches(st["mzxid"], data=["/r"]) == 0
        w2.exists("/")
        assert w2.events == []  # nothing changed since the zxid the client saw
        other.set("/r", b"1")
        w2.exists("/")
        assert w2.events == [(zkraw.EV_NODE_DATA_CHANGED, 3, "/r")]
        w2.close()
    finally:
        for k in (c, other):
            if k is not None:
                k.stop()
                k.close()
