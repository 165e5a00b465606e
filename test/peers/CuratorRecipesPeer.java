// Interop peer for Curator's InterProcessSemaphoreV2 and InterProcessReadWriteLock: ONE JVM per
// test file serves commands read from stdin, each run by several Curator clients (one
// CuratorFramework, i.e. one ZooKeeper session, per thread), so a test pays for one JVM start.
//
//   java -cp "$(sh test/peers/classpath.sh)" test/peers/CuratorRecipesPeer.java <connectString>
//
// stdin, one command per line (fields separated by single spaces):
//   semaphore <path> <max|count=<countPath>> <clients> <rounds> <qty> <holdMs> <logFile> <idPrefix>
//       each client: rounds × { acquire(qty, PEER_WAIT_MS) ; log ENTER ; sleep ; log EXIT ; returnAll }
//       log lines: "ENTER <id> <round> <qty>" after acquiring, "EXIT <id> <round> <qty>" before returning
//   rwlock <path> <readers> <writers> <rounds> <holdMs> <logFile> <idPrefix>
//       readers log "RENTER/REXIT <id> <round>", writers "WENTER/WEXIT <id> <round>"
//   children <path> <sortMarker>        children sorted the Curator way for the marker ("rw" = the
//                                       read-write lock's driver), one per line, then "END"
// stdout: "READY" once connected; per command "STARTED" once its clients are connected, then
// "DONE" or "FAIL <message>". Each log line is one O_APPEND write (see test/peers/README.md).
// Environment: PEER_WAIT_MS (default 30000) bounds every acquire.

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.locks.LockInternals;
import org.apache.curator.framework.recipes.locks.StandardLockInternalsDriver;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorRecipesPeer {
    private static final long WAIT_MS = Long.parseLong(System.getenv().getOrDefault("PEER_WAIT_MS", "30000"));

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: CuratorRecipesPeer <connectString>  (commands on stdin)");
            System.exit(2);
        }
        String connect = args[0];
        CuratorFramework admin = client(connect);
        say("READY");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) continue;
            String[] a = line.trim().split(" ");
            try {
                switch (a[0]) {
                    case "semaphore": semaphore(connect, a); break;
                    case "rwlock": rwlock(connect, a); break;
                    case "children": children(admin, a); break;
                    default: throw new IllegalArgumentException("unknown command " + a[0]);
                }
                say("DONE");
            } catch (Throwable t) {
                say("FAIL " + t.toString().replace('\n', ' '));
            }
        }
        admin.close();
        System.exit(0);
    }

    private static CuratorFramework client(String connect) throws InterruptedException {
        CuratorFramework c = CuratorFrameworkFactory.newClient(connect, 10000, 5000, new ExponentialBackoffRetry(100, 3));
        c.start();
        if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) throw new IllegalStateException("no connection to " + connect);
        return c;
    }

    private static synchronized void say(String s) {
        System.out.println(s);
        System.out.flush();
    }

    private static void append(Path log, String line) throws IOException {
        Files.write(log, (line + "\n").getBytes(StandardCharsets.UTF_8), StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    private interface Body {
        void run(CuratorFramework c, int index) throws Exception;
    }

    /** Runs `n` clients, each on its own thread and session; STARTED once all are connected. */
    private static void parallel(String connect, int n, Body body) throws Exception {
        List<CuratorFramework> clients = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) clients.add(client(connect));
            say("STARTED");
            AtomicReference<Throwable> failed = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                final int idx = i;
                Thread t = new Thread(() -> {
                    try {
                        body.run(clients.get(idx), idx);
                    } catch (Throwable e) {
                        failed.compareAndSet(null, e);
                    }
                });
                threads.add(t);
                t.start();
            }
            for (Thread t : threads) t.join();
            if (failed.get() != null) throw new RuntimeException(failed.get());
        } finally {
            for (CuratorFramework c : clients) c.close();
        }
    }

    // semaphore <path> <max|count=<countPath>> <clients> <rounds> <qty> <holdMs> <logFile> <idPrefix>
    private static void semaphore(String connect, String[] a) throws Exception {
        String path = a[1];
        String max = a[2];
        int clients = Integer.parseInt(a[3]);
        int rounds = Integer.parseInt(a[4]);
        int qty = Integer.parseInt(a[5]);
        long holdMs = Long.parseLong(a[6]);
        Path log = Paths.get(a[7]);
        String prefix = a[8];
        parallel(connect, clients, (c, i) -> {
            String id = prefix + "-" + (i + 1);
            SharedCount count = null;
            InterProcessSemaphoreV2 sem;
            if (max.startsWith("count=")) {
                count = new SharedCount(c, max.substring(6), 1);
                count.start();
                sem = new InterProcessSemaphoreV2(c, path, count);
            } else {
                sem = new InterProcessSemaphoreV2(c, path, Integer.parseInt(max));
            }
            try {
                for (int round = 1; round <= rounds; round++) {
                    Collection<Lease> leases = sem.acquire(qty, WAIT_MS, TimeUnit.MILLISECONDS);
                    if (leases == null) throw new IllegalStateException(id + " round " + round + ": no permits within " + WAIT_MS + " ms");
                    try {
                        append(log, "ENTER " + id + " " + round + " " + qty);
                        Thread.sleep(holdMs);
                        append(log, "EXIT " + id + " " + round + " " + qty);
                    } finally {
                        sem.returnAll(leases);
                    }
                    Thread.sleep(ThreadLocalRandom.current().nextInt(0, 6));
                }
            } finally {
                if (count != null) count.close();
            }
        });
    }

    // rwlock <path> <readers> <writers> <rounds> <holdMs> <logFile> <idPrefix>
    private static void rwlock(String connect, String[] a) throws Exception {
        String path = a[1];
        int readers = Integer.parseInt(a[2]);
        int writers = Integer.parseInt(a[3]);
        int rounds = Integer.parseInt(a[4]);
        long holdMs = Long.parseLong(a[5]);
        Path log = Paths.get(a[6]);
        String prefix = a[7];
        parallel(connect, readers + writers, (c, i) -> {
            boolean writer = i >= readers;
            String id = prefix + (writer ? "-w" + (i - readers + 1) : "-r" + (i + 1));
            InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c, path);
            InterProcessMutex m = writer ? rw.writeLock() : rw.readLock();
            String tag = writer ? "W" : "R";
            for (int round = 1; round <= rounds; round++) {
                if (!m.acquire(WAIT_MS, TimeUnit.MILLISECONDS)) throw new IllegalStateException(id + " round " + round + ": not acquired within " + WAIT_MS + " ms");
                try {
                    append(log, tag + "ENTER " + id + " " + round);
                    Thread.sleep(holdMs);
                    append(log, tag + "EXIT " + id + " " + round);
                } finally {
                    m.release();
                }
                Thread.sleep(ThreadLocalRandom.current().nextInt(0, 6));
            }
        });
    }

    // children <path> <sortMarker>: Curator's own sort (LockInternals.getSortedChildren)
    private static void children(CuratorFramework c, String[] a) throws Exception {
        String path = a[1];
        String marker = a[2];
        StandardLockInternalsDriver driver = marker.equals("rw")
            ? new StandardLockInternalsDriver() {
                @Override
                public String fixForSorting(String str, String lockName) {
                    return super.fixForSorting(super.fixForSorting(str, "__READ__"), "__WRIT__");
                }
            }
            : new StandardLockInternalsDriver();
        for (String name : LockInternals.getSortedChildren(c, path, marker, driver)) say(name);
        say("END");
    }
}
