// The lock peer of `npm run bench`: Curator's InterProcessMutex, N clients (each its own
// CuratorFramework, i.e. its own ZooKeeper session) acquiring and releasing one lock in a loop.
//
//   java -cp "$(sh test/peers/classpath.sh)" bench/CuratorLockBench.java <connectString> <lockPath> <maxClients>
//
// Prints READY once every client is connected, then reads commands from stdin:
//   round <clients> <ms>  -> runs <clients> of them for <ms>; prints "CYCLES <count> <elapsedMs>"
//   quit                  -> closes the clients and exits
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorLockBench {
    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String path = args[1];
        int max = Integer.parseInt(args[2]);
        List<CuratorFramework> clients = new ArrayList<>();
        List<InterProcessMutex> mutexes = new ArrayList<>();
        for (int i = 0; i < max; i++) {
            CuratorFramework c = CuratorFrameworkFactory.newClient(connect, 10000, 5000, new ExponentialBackoffRetry(100, 3));
            c.start();
            if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) throw new IllegalStateException("not connected");
            clients.add(c);
            mutexes.add(new InterProcessMutex(c, path));
        }
        System.out.println("READY");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {
            String[] w = line.trim().split("\\s+");
            if (w[0].equals("quit")) break;
            if (!w[0].equals("round")) continue;
            int n = Integer.parseInt(w[1]);
            long ms = Long.parseLong(w[2]);
            AtomicLong cycles = new AtomicLong();
            long start = System.nanoTime();
            long end = start + ms * 1_000_000L;
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                InterProcessMutex m = mutexes.get(i);
                Thread t = new Thread(() -> {
                    try {
                        while (System.nanoTime() < end) {
                            if (!m.acquire(30, TimeUnit.SECONDS)) throw new IllegalStateException("acquire timed out");
                            m.release();
                            cycles.incrementAndGet();
                        }
                    } catch (Exception e) {
                        e.printStackTrace();
                        System.exit(1);
                    }
                });
                t.start();
                threads.add(t);
            }
            for (Thread t : threads) t.join();
            System.out.println("CYCLES " + cycles.get() + " " + (System.nanoTime() - start) / 1_000_000L);
            System.out.flush();
        }
        for (CuratorFramework c : clients) c.close();
    }
}
