// Interop peer: Apache Curator recipes (InterProcessMutex, LeaderLatch) driven from the command
// line, so zkgate tests can prove that the gateway's lock/election recipes interoperate with
// Curator on the same ZooKeeper paths.
//
// Single-file program for the Java 17 source launcher (no build step):
//
//   java -cp "$(sh test/peers/classpath.sh)" test/peers/CuratorPeer.java <mode> <args...>
//
// Modes:
//   lock    <connectString> <lockPath> <rounds> <holdMs> <logFile> <peerId>
//   latch   <connectString> <latchPath> <holdMs> <rounds> <logFile> <peerId>
//   inspect <connectString> <path> [lockName]       (lockName defaults to "lock-"; use "latch-" for latches)
//   participants <connectString> <latchPath>         (LeaderLatch participants in Curator's order)
//
// Protocol (see test/peers/README.md):
//   stdout: "READY" once the client is connected, "DONE" when all rounds are finished (exit 0).
//   log file: one whole line per append, written with a single O_APPEND write, so that Java,
//   Python and Node peers can share one file:
//     lock:  "ENTER <peerId> <round>" after acquire, "EXIT <peerId> <round>" before release
//     latch: "LEAD <peerId> <round>" after gaining leadership, "UNLEAD <peerId> <round>" before close()
//   rounds are numbered from 1.
//   exit codes: 0 ok, 1 error, 2 usage, 3 timed out waiting for the lock/leadership.
//
// Environment:
//   PEER_WAIT_MS (default 30000) bounds each acquire()/await().
//   PEER_START_FILE (optional): after printing READY, wait (polling every 5 ms, up to PEER_WAIT_MS)
//   until this file exists before starting round 1 -- a start gate so that tests can release
//   several peers (whose JVM/interpreter start-up times differ a lot) at the same moment.

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.LockInternals;
import org.apache.curator.framework.recipes.locks.StandardLockInternalsDriver;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorPeer {
    private static final long WAIT_MS = envLong("PEER_WAIT_MS", 30_000L);

    public static void main(String[] args) {
        if (args.length < 1) {
            usage();
        }
        int rc;
        try {
            switch (args[0]) {
                case "lock":
                    rc = lockMode(args);
                    break;
                case "latch":
                    rc = latchMode(args);
                    break;
                case "inspect":
                    rc = inspectMode(args);
                    break;
                case "participants":
                    rc = participantsMode(args);
                    break;
                default:
                    usage();
                    rc = 2;
            }
        } catch (Throwable t) {
            System.err.println("ERROR " + t);
            t.printStackTrace(System.err);
            rc = 1;
        }
        System.out.flush();
        System.err.flush();
        // Curator/ZooKeeper leave non-daemon threads around in some failure paths.
        System.exit(rc);
    }

    private static void usage() {
        System.err.println("usage:\n"
                + "  CuratorPeer lock <connectString> <lockPath> <rounds> <holdMs> <logFile> <peerId>\n"
                + "  CuratorPeer latch <connectString> <latchPath> <holdMs> <rounds> <logFile> <peerId>\n"
                + "  CuratorPeer inspect <connectString> <path> [lockName]\n"
                + "  CuratorPeer participants <connectString> <latchPath>");
        System.exit(2);
    }

    private static void need(String[] args, int n) {
        if (args.length < n) {
            usage();
        }
    }

    private static CuratorFramework connect(String connectString) throws InterruptedException {
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                connectString, 10000, 5000, new ExponentialBackoffRetry(100, 3));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            client.close();
            throw new IllegalStateException("could not connect to " + connectString + " within 30 s");
        }
        // On SIGTERM/SIGINT close the session so our ephemeral nodes vanish at once
        // instead of after the session timeout.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                client.close();
            } catch (Throwable ignored) {
                // best effort
            }
        }, "curator-peer-shutdown"));
        return client;
    }

    private static void say(String s) {
        System.out.println(s);
        System.out.flush();
    }

    /** One whole line, one write(2) with O_APPEND (Files.write does a single write for short buffers). */
    private static void append(Path log, String line) throws IOException {
        Files.write(log, (line + "\n").getBytes(StandardCharsets.UTF_8),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    /** Optional start gate, see PEER_START_FILE. */
    private static void awaitStartGate() throws InterruptedException {
        String gate = System.getenv("PEER_START_FILE");
        if (gate == null || gate.isEmpty()) {
            return;
        }
        Path p = Paths.get(gate);
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (!Files.exists(p)) {
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("start gate " + gate + " did not appear within " + WAIT_MS + " ms");
            }
            Thread.sleep(5);
        }
    }

    private static void jitter() throws InterruptedException {
        Thread.sleep(ThreadLocalRandom.current().nextInt(0, 6));
    }

    // lock <connectString> <lockPath> <rounds> <holdMs> <logFile> <peerId>
    private static int lockMode(String[] args) throws Exception {
        need(args, 7);
        String connectString = args[1];
        String lockPath = args[2];
        int rounds = Integer.parseInt(args[3]);
        long holdMs = Long.parseLong(args[4]);
        Path log = Paths.get(args[5]);
        String peerId = args[6];

        CuratorFramework client = connect(connectString);
        try {
            InterProcessMutex mutex = new InterProcessMutex(client, lockPath);
            say("READY");
            awaitStartGate();
            for (int round = 1; round <= rounds; round++) {
                if (!mutex.acquire(WAIT_MS, TimeUnit.MILLISECONDS)) {
                    System.err.println("TIMEOUT " + peerId + " " + round + " acquiring " + lockPath);
                    return 3;
                }
                try {
                    append(log, "ENTER " + peerId + " " + round);
                    Thread.sleep(holdMs);
                    append(log, "EXIT " + peerId + " " + round);
                } finally {
                    mutex.release();
                }
                jitter();
            }
            say("DONE");
            return 0;
        } finally {
            client.close();
        }
    }

    // latch <connectString> <latchPath> <holdMs> <rounds> <logFile> <peerId>
    private static int latchMode(String[] args) throws Exception {
        need(args, 7);
        String connectString = args[1];
        String latchPath = args[2];
        long holdMs = Long.parseLong(args[3]);
        int rounds = Integer.parseInt(args[4]);
        Path log = Paths.get(args[5]);
        String peerId = args[6];

        CuratorFramework client = connect(connectString);
        try {
            say("READY");
            awaitStartGate();
            for (int round = 1; round <= rounds; round++) {
                LeaderLatch latch = new LeaderLatch(client, latchPath, peerId);
                latch.start();
                try {
                    if (!latch.await(WAIT_MS, TimeUnit.MILLISECONDS)) {
                        System.err.println("TIMEOUT " + peerId + " " + round + " awaiting leadership of " + latchPath);
                        return 3;
                    }
                    append(log, "LEAD " + peerId + " " + round);
                    Thread.sleep(holdMs);
                    append(log, "UNLEAD " + peerId + " " + round);
                } finally {
                    // Gives up leadership: deletes our latch node.
                    latch.close();
                }
                jitter();
            }
            say("DONE");
            return 0;
        } finally {
            client.close();
        }
    }

    // inspect <connectString> <path> [lockName]
    // Children of <path> sorted exactly as Curator's lock/latch recipes sort them: no filtering,
    // stable sort on StandardLockInternalsDriver.fixForSorting(name, lockName), i.e. the part
    // after the LAST occurrence of lockName (the whole name if lockName does not occur).
    private static int inspectMode(String[] args) throws Exception {
        need(args, 3);
        String lockName = args.length > 3 ? args[3] : "lock-";
        CuratorFramework client = connect(args[1]);
        try {
            List<String> sorted = LockInternals.getSortedChildren(
                    client, args[2], lockName, new StandardLockInternalsDriver());
            for (String child : sorted) {
                System.out.println(child);
            }
            System.out.flush();
            return 0;
        } finally {
            client.close();
        }
    }

    // participants <connectString> <latchPath>
    // One line per LeaderLatch participant, in Curator's order: "<id> <isLeader>".
    private static int participantsMode(String[] args) throws Exception {
        need(args, 3);
        CuratorFramework client = connect(args[1]);
        try {
            // Never started: only used to query the participants of latchPath.
            LeaderLatch latch = new LeaderLatch(client, args[2]);
            for (Participant p : latch.getParticipants()) {
                System.out.println(p.getId() + " " + p.isLeader());
            }
            System.out.flush();
            return 0;
        } finally {
            client.close();
        }
    }

    private static long envLong(String name, long dflt) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) {
            return dflt;
        }
        return Long.parseLong(v);
    }
}
