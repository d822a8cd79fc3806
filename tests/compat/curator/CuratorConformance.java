// Apache Curator 5 (Debian's libcurator-*-java) against a ZooKeeper-compatible
// server: the framework's create/read/update/delete with parents as
// containers, transactions, and the recipes applications lean on (lock,
// leader latch, shared counter, CuratorCache on persistent recursive
// watches). Prints "ok <check>" per check; exits 1 at the first failure.
//
//   java -cp /usr/share/java/curator-recipes.jar:. CuratorConformance host:port

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorConformance {
    static void check(boolean cond, String what) {
        if (!cond) {
            System.out.println("FAILED " + what);
            System.exit(1);
        }
        System.out.println("ok " + what);
    }

    static CuratorFramework client(String hosts) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(hosts, 10000, 5000, new ExponentialBackoffRetry(100, 5));
        c.start();
        check(c.blockUntilConnected(30, TimeUnit.SECONDS), "connected");
        return c;
    }

    static void waitFor(List<String> seen, String event) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 15000;
        while (!seen.contains(event) && System.currentTimeMillis() < deadline) Thread.sleep(20);
        check(seen.contains(event), "CuratorCache (persistent recursive watch) saw: " + event);
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        CuratorFramework c = client(hosts);
        CuratorFramework d = client(hosts);

        c.create().creatingParentContainersIfNeeded().forPath("/cur/a/b", b("v1"));
        check(new String(c.getData().forPath("/cur/a/b"), StandardCharsets.UTF_8).equals("v1"), "create with container parents");
        Stat st = c.checkExists().forPath("/cur/a");
        check(st != null && st.getNumChildren() == 1, "parent exists with one child");
        Stat set = c.setData().withVersion(0).forPath("/cur/a/b", b("v2"));
        check(set.getVersion() == 1, "setData with version");
        try {
            c.setData().withVersion(0).forPath("/cur/a/b", b("v3"));
            check(false, "stale version refused");
        } catch (KeeperException.BadVersionException e) {
            check(true, "stale version refused");
        }
        String seq = c.create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath("/cur/a/s-");
        check(seq.matches("/cur/a/s-\\d{10}"), "ephemeral sequential name " + seq);

        CuratorOp op1 = c.transactionOp().create().forPath("/cur/t1", b("x"));
        CuratorOp op2 = c.transactionOp().setData().forPath("/cur/a/b", b("t"));
        check(c.transaction().forOperations(op1, op2).size() == 2, "transaction of two ops");
        try {
            CuratorOp bad1 = c.transactionOp().create().forPath("/cur/t2");
            CuratorOp bad2 = c.transactionOp().delete().forPath("/cur/none");
            c.transaction().forOperations(bad1, bad2);
            check(false, "failed transaction throws");
        } catch (KeeperException.NoNodeException e) {
            check(c.checkExists().forPath("/cur/t2") == null, "failed transaction is all-or-nothing");
        }

        // A lock: the second holder waits until the first releases.
        InterProcessMutex m1 = new InterProcessMutex(c, "/cur/lock");
        InterProcessMutex m2 = new InterProcessMutex(d, "/cur/lock");
        check(m1.acquire(10, TimeUnit.SECONDS), "lock acquired");
        check(!m2.acquire(300, TimeUnit.MILLISECONDS), "lock excludes a second holder");
        m1.release();
        check(m2.acquire(10, TimeUnit.SECONDS), "lock passes on after release");
        m2.release();

        // Leader latch: exactly one of two is leader; when it leaves, the other leads.
        LeaderLatch l1 = new LeaderLatch(c, "/cur/leader", "one");
        LeaderLatch l2 = new LeaderLatch(d, "/cur/leader", "two");
        l1.start();
        l2.start();
        long deadline = System.currentTimeMillis() + 15000;
        while (!(l1.hasLeadership() || l2.hasLeadership()) && System.currentTimeMillis() < deadline) Thread.sleep(50);
        check(l1.hasLeadership() ^ l2.hasLeadership(), "exactly one leader");
        LeaderLatch leader = l1.hasLeadership() ? l1 : l2;
        LeaderLatch other = leader == l1 ? l2 : l1;
        leader.close();
        check(other.await(15, TimeUnit.SECONDS), "leadership passes on");
        other.close();

        // A shared counter built on versioned setData.
        DistributedAtomicLong n1 = new DistributedAtomicLong(c, "/cur/counter", new RetryNTimes(50, 10));
        DistributedAtomicLong n2 = new DistributedAtomicLong(d, "/cur/counter", new RetryNTimes(50, 10));
        for (int i = 0; i < 10; i++) {
            check(n1.increment().succeeded(), "increment " + i + " (1)");
            check(n2.increment().succeeded(), "increment " + i + " (2)");
        }
        check(n1.get().postValue() == 20L, "counter reached 20");

        // CuratorCache on ZooKeeper 3.6+ uses a persistent recursive watch.
        List<String> seen = new CopyOnWriteArrayList<>();
        CuratorCache cache = CuratorCache.build(d, "/cur/cache");
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forCreates(n -> seen.add("created " + n.getPath()))
                .forChanges((o, n) -> seen.add("changed " + n.getPath()))
                .forDeletes(o -> seen.add("deleted " + o.getPath()))
                .build());
        c.create().forPath("/cur/cache");
        cache.start();
        waitFor(seen, "created /cur/cache");
        // One change at a time: the cache reports a change only against
        // data it already holds.
        c.create().forPath("/cur/cache/x", b("1"));
        waitFor(seen, "created /cur/cache/x");
        c.create().forPath("/cur/cache/x/y", b("2"));
        waitFor(seen, "created /cur/cache/x/y");
        c.setData().forPath("/cur/cache/x", b("3"));
        waitFor(seen, "changed /cur/cache/x");
        c.delete().forPath("/cur/cache/x/y");
        waitFor(seen, "deleted /cur/cache/x/y");
        cache.close();

        c.delete().deletingChildrenIfNeeded().forPath("/cur");
        check(c.checkExists().forPath("/cur") == null, "recursive delete");
        d.close();
        c.close();
        System.out.println("ALL OK");
    }
}
