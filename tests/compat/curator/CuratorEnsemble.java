// Apache Curator 5 (Debian's libcurator-*-java) against a 3-node ensemble,
// through a leader crash: a lock held and a lock waited for, a leader latch and
// a shared counter, all started before the crash and checked after it; and
// plain one-shot watches set before the crash, which the ZooKeeper client sets
// again on the new server when it reconnects (SetWatches) and which must fire
// for changes made after the crash.
//
// The crash is done by the caller: when this program prints "KILL-LEADER" it
// waits for a line on stdin (the caller SIGKILLs the ensemble's leader, then
// writes "killed"). Prints "ok <check>" per check, "ALL OK" at the end; exits 1
// at the first failure.
//
//   java -cp /usr/share/java/curator-recipes.jar:. CuratorEnsemble h1:p1,h2:p2,h3:p3

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.retry.RetryUntilElapsed;
import org.apache.zookeeper.Watcher;

public class CuratorEnsemble {
    static final String BASE = "/ens-cur";

    static void check(boolean cond, String what) {
        if (!cond) {
            System.out.println("FAILED " + what);
            System.out.flush();
            System.exit(1);
        }
        System.out.println("ok " + what);
        System.out.flush();
    }

    static CuratorFramework client(String hosts, List<ConnectionState> states) throws Exception {
        // 20 s sessions outlive a fail-over; operations retry for up to 60 s.
        CuratorFramework c = CuratorFrameworkFactory.newClient(hosts, 20000, 5000, new RetryUntilElapsed(60000, 100));
        c.getConnectionStateListenable().addListener((client, state) -> states.add(state));
        c.start();
        check(c.blockUntilConnected(60, TimeUnit.SECONDS), "connected");
        return c;
    }

    static boolean waitUntil(java.util.function.BooleanSupplier cond, long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < deadline) {
            if (cond.getAsBoolean()) return true;
            Thread.sleep(20);
        }
        return cond.getAsBoolean();
    }

    static int children(CuratorFramework c, String path) {
        try {
            return c.getChildren().forPath(path).size();
        } catch (Exception e) {
            return -1;
        }
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static long session(CuratorFramework c) throws Exception {
        return c.getZookeeperClient().getZooKeeper().getSessionId();
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        List<ConnectionState> cStates = new CopyOnWriteArrayList<>();
        List<ConnectionState> dStates = new CopyOnWriteArrayList<>();
        CuratorFramework c = client(hosts, cStates);
        CuratorFramework d = client(hosts, dStates);
        c.create().creatingParentContainersIfNeeded().forPath(BASE + "/marker");

        // Counter: 10 increments before the crash.
        DistributedAtomicLong n1 = new DistributedAtomicLong(c, BASE + "/counter", new RetryNTimes(100, 20));
        DistributedAtomicLong n2 = new DistributedAtomicLong(d, BASE + "/counter", new RetryNTimes(100, 20));
        for (int i = 0; i < 5; i++) {
            check(n1.increment().succeeded() && n2.increment().succeeded(), "increments before the crash, round " + i);
        }
        check(n1.get().postValue() == 10L, "counter at 10 before the crash");

        // Lock: c holds it, d waits for it (in its own thread: a mutex is
        // released by the thread that acquired it).
        InterProcessMutex m1 = new InterProcessMutex(c, BASE + "/lock");
        InterProcessMutex m2 = new InterProcessMutex(d, BASE + "/lock");
        check(m1.acquire(20, TimeUnit.SECONDS), "lock acquired by the first client");
        AtomicBoolean m2Acquired = new AtomicBoolean(false);
        AtomicBoolean m2Failed = new AtomicBoolean(false);
        CountDownLatch releaseM2 = new CountDownLatch(1);
        Thread waiter = new Thread(() -> {
            try {
                if (m2.acquire(120, TimeUnit.SECONDS)) {
                    m2Acquired.set(true);
                    releaseM2.await();
                    m2.release();
                } else {
                    m2Failed.set(true);
                }
            } catch (Exception e) {
                System.out.println("lock waiter: " + e);
                m2Failed.set(true);
            }
        });
        waiter.start();
        check(waitUntil(() -> children(c, BASE + "/lock") == 2, 20000), "second client queued on the lock");

        // Leader latch: exactly one of two leads.
        LeaderLatch l1 = new LeaderLatch(c, BASE + "/leader", "one");
        LeaderLatch l2 = new LeaderLatch(d, BASE + "/leader", "two");
        l1.start();
        l2.start();
        check(waitUntil(() -> l1.hasLeadership() || l2.hasLeadership(), 20000), "a latch leader");
        check(l1.hasLeadership() ^ l2.hasLeadership(), "exactly one latch leader before the crash");

        // Counter increments keep running while the leader dies.
        AtomicBoolean stop = new AtomicBoolean(false);
        AtomicLong attempts = new AtomicLong();
        AtomicLong successes = new AtomicLong();
        AtomicLong successesAfterCrash = new AtomicLong();
        AtomicBoolean crashed = new AtomicBoolean(false);
        AtomicLong lastSeen = new AtomicLong(10);
        AtomicBoolean wentBack = new AtomicBoolean(false);
        Thread counter = new Thread(() -> {
            while (!stop.get()) {
                attempts.incrementAndGet();
                try {
                    AtomicValue<Long> v = n1.increment();
                    if (v.succeeded()) {
                        successes.incrementAndGet();
                        if (crashed.get()) successesAfterCrash.incrementAndGet();
                        if (v.postValue() <= lastSeen.get()) wentBack.set(true);
                        lastSeen.set(v.postValue());
                    }
                } catch (Exception e) {
                    // Connection loss during the fail-over: the increment may or may not have happened.
                }
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        counter.start();
        check(waitUntil(() -> successes.get() >= 3, 20000), "counter increments running");

        // One-shot watches (data, exists, children) set before the crash.
        List<String> watchEvents = new CopyOnWriteArrayList<>();
        Watcher w = event -> {
            if (event.getType() != Watcher.Event.EventType.None) watchEvents.add(event.getType() + " " + event.getPath());
        };
        c.create().forPath(BASE + "/w", b("v0"));
        c.getData().usingWatcher(w).forPath(BASE + "/w");
        check(c.checkExists().usingWatcher(w).forPath(BASE + "/w-new") == null, "exists watch on a missing node");
        check(c.getChildren().usingWatcher(w).forPath(BASE + "/w").isEmpty(), "children watch");

        long cSession = session(c);
        long dSession = session(d);
        System.out.println("KILL-LEADER");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String reply = in.readLine();
        check("killed".equals(reply), "caller killed the leader");
        crashed.set(true);
        // Changes through the other client, as soon as it can write again.
        d.setData().forPath(BASE + "/w", b("v1"));
        d.create().forPath(BASE + "/w-new");
        d.create().forPath(BASE + "/w/kid");
        for (String e : new String[] {"NodeDataChanged " + BASE + "/w", "NodeCreated " + BASE + "/w-new",
                                      "NodeChildrenChanged " + BASE + "/w"}) {
            check(waitUntil(() -> watchEvents.contains(e), 60000), "watch set before the crash fired after it: " + e);
        }
        Thread.sleep(300);
        check(watchEvents.size() == 3, "each watch fired once: " + watchEvents);

        check(c.blockUntilConnected(60, TimeUnit.SECONDS) && d.blockUntilConnected(60, TimeUnit.SECONDS),
              "both clients connected after the fail-over");
        check(waitUntil(() -> successesAfterCrash.get() >= 5, 60000), "counter increments resume after the fail-over");
        stop.set(true);
        counter.join(30000);
        check(!counter.isAlive(), "counter thread stopped");
        check(!wentBack.get(), "counter never went back");
        long value = n1.get().postValue();
        // An increment cut off by the crash may or may not have landed (and
        // a retried one may land twice), so only acknowledged ones are counted.
        check(value >= 10 + successes.get(), "counter " + value + " holds every acknowledged increment ("
              + successes.get() + " acknowledged of " + attempts.get() + " attempts)");

        check(session(c) == cSession && session(d) == dSession, "sessions kept through the fail-over");
        check(!cStates.contains(ConnectionState.LOST) && !dStates.contains(ConnectionState.LOST),
              "no session lost (states: " + cStates + " / " + dStates + ")");

        // The lock: still held by the first client, still waited for by the second.
        check(m1.isAcquiredInThisProcess(), "lock still held after the fail-over");
        check(children(c, BASE + "/lock") == 2, "both lock nodes (ephemerals) survived");
        check(!m2Acquired.get() && !m2Failed.get(), "waiter still waiting");
        m1.release();
        check(waitUntil(m2Acquired::get, 30000), "lock passes on after the fail-over");
        releaseM2.countDown();
        waiter.join(30000);
        check(waitUntil(() -> children(c, BASE + "/lock") == 0, 20000), "lock released");

        // The latch: one leader again (a latch gives leadership up while
        // disconnected and competes anew on reconnection), then hand-over.
        check(waitUntil(() -> l1.hasLeadership() ^ l2.hasLeadership(), 30000), "exactly one latch leader after the fail-over");
        Thread.sleep(500);
        check(l1.hasLeadership() ^ l2.hasLeadership(), "latch leadership stable");
        check(children(c, BASE + "/leader") == 2, "two latch participants");
        LeaderLatch leader = l1.hasLeadership() ? l1 : l2;
        LeaderLatch other = leader == l1 ? l2 : l1;
        leader.close();
        check(other.await(30, TimeUnit.SECONDS), "latch leadership passes on after the fail-over");
        other.close();

        c.delete().deletingChildrenIfNeeded().forPath(BASE);
        check(c.checkExists().forPath(BASE) == null, "clean up");
        d.close();
        c.close();
        System.out.println("ALL OK");
        System.out.flush();
    }
}
