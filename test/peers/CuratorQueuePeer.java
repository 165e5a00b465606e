// Interop peer for queues and barriers: Apache Curator 5.4's SimpleDistributedQueue,
// DistributedBarrier and DistributedDoubleBarrier, driven by commands on stdin so that one JVM
// serves a whole test file (a source-launcher JVM takes seconds to start on a loaded machine).
//
//   java -cp "$(sh test/peers/classpath.sh)" test/peers/CuratorQueuePeer.java <connectString>
//
// Prints "READY" once connected. Then each stdin line is one command, run on its own thread;
// when it finishes the peer prints "OK <tag> <result>" or "ERR <tag> <message>":
//   put      <tag> <path> <count> <dataPrefix> <logFile> <peerId>   offer() <count> items "<dataPrefix>-<i>";
//                                                                    logs "PUT <peerId> <data>"; result: count
//   take     <tag> <path> <idleMs> <logFile> <peerId>                poll(idleMs) until it returns null;
//                                                                    logs "TAKE <peerId> <data>"; result: count
//   double   <tag> <path> <members> <waitMs> <holdMs> <logFile> <peerId>
//                                                                    DistributedDoubleBarrier: logs "ARRIVE <peerId>",
//                                                                    enter(waitMs), logs "ENTERED <peerId>", sleeps holdMs,
//                                                                    logs "LEAVING <peerId>", leave(waitMs), logs "LEFT <peerId>";
//                                                                    result: "<entered> <left>" (true/false)
//   await    <tag> <path> <waitMs>                                   DistributedBarrier.waitOnBarrier(waitMs); result: true/false
//   set      <tag> <path>                                            DistributedBarrier.setBarrier()
//   remove   <tag> <path>                                            DistributedBarrier.removeBarrier()
// EOF on stdin (or SIGTERM) closes the session and exits. Log lines are single O_APPEND writes,
// as test/peers/README.md describes.

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.queue.SimpleDistributedQueue;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorQueuePeer {
    private static CuratorFramework client;

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: CuratorQueuePeer <connectString>");
            System.exit(2);
        }
        client = CuratorFrameworkFactory.newClient(args[0], 10000, 5000, new ExponentialBackoffRetry(100, 3));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.err.println("could not connect to " + args[0]);
            System.exit(1);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> client.close(), "peer-shutdown"));
        say("READY");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] a = line.trim().split(" ");
            if (a.length < 2) {
                continue;
            }
            Thread t = new Thread(() -> run(a), "cmd-" + a[1]);
            t.setDaemon(true);
            t.start();
        }
        System.exit(0);
    }

    private static synchronized void say(String s) {
        System.out.println(s);
        System.out.flush();
    }

    private static void append(Path log, String line) throws IOException {
        Files.write(log, (line + "\n").getBytes(StandardCharsets.UTF_8),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    private static void run(String[] a) {
        String tag = a[1];
        try {
            say("OK " + tag + " " + execute(a));
        } catch (Throwable t) {
            say("ERR " + tag + " " + String.valueOf(t).replace('\n', ' '));
        }
    }

    private static String execute(String[] a) throws Exception {
        switch (a[0]) {
            case "put": {
                SimpleDistributedQueue q = new SimpleDistributedQueue(client, a[2]);
                int count = Integer.parseInt(a[3]);
                Path log = Paths.get(a[5]);
                for (int i = 1; i <= count; i++) {
                    String data = a[4] + "-" + i;
                    q.offer(data.getBytes(StandardCharsets.UTF_8));
                    append(log, "PUT " + a[6] + " " + data);
                }
                return String.valueOf(count);
            }
            case "take": {
                SimpleDistributedQueue q = new SimpleDistributedQueue(client, a[2]);
                long idleMs = Long.parseLong(a[3]);
                Path log = Paths.get(a[4]);
                int n = 0;
                for (;;) {
                    byte[] b = q.poll(idleMs, TimeUnit.MILLISECONDS);
                    if (b == null) {
                        return String.valueOf(n);
                    }
                    append(log, "TAKE " + a[5] + " " + new String(b, StandardCharsets.UTF_8));
                    n++;
                }
            }
            case "double": {
                DistributedDoubleBarrier b = new DistributedDoubleBarrier(client, a[2], Integer.parseInt(a[3]));
                long waitMs = Long.parseLong(a[4]);
                Path log = Paths.get(a[6]);
                append(log, "ARRIVE " + a[7]);
                boolean entered = b.enter(waitMs, TimeUnit.MILLISECONDS);
                append(log, "ENTERED " + a[7]);
                Thread.sleep(Long.parseLong(a[5]));
                append(log, "LEAVING " + a[7]);
                boolean left = b.leave(waitMs, TimeUnit.MILLISECONDS);
                append(log, "LEFT " + a[7]);
                return entered + " " + left;
            }
            case "await":
                return String.valueOf(new DistributedBarrier(client, a[2]).waitOnBarrier(Long.parseLong(a[3]), TimeUnit.MILLISECONDS));
            case "set":
                new DistributedBarrier(client, a[2]).setBarrier();
                return "set";
            case "remove":
                new DistributedBarrier(client, a[2]).removeBarrier();
                return "removed";
            default:
                throw new IllegalArgumentException("unknown command " + a[0]);
        }
    }
}
