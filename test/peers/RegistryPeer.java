// Interop peer: Apache Curator 5.4 x-discovery ServiceDiscovery driven line by line from stdin,
// so one JVM (slow to start on a loaded machine) serves a whole test. Java 17 source launcher:
//
//   java -cp "$(sh test/peers/classpath.sh):/usr/share/java/curator-x-discovery.jar:..." \
//        test/peers/RegistryPeer.java <connectString> <basePath> <sessionTimeoutMs>
//
// stdout: "READY" once connected and the discovery started; then, per command, its output lines
// followed by "END". Commands (one per line, fields separated by spaces):
//   names                                  one service name per line (queryForNames)
//   list <service>                         one line per instance: <id> <address> <port> <uri> <payload JSON>
//   register <service> <id> <address> <port>   registers a DYNAMIC instance with a Map payload {"peer":"curator"}
//   unregister <service> <id>
// Errors print "ERR <message>" before "END". SIGKILL leaves the session to expire (its instances
// go after <sessionTimeoutMs>), which is what the tests measure.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;

public class RegistryPeer {
    @SuppressWarnings({"rawtypes", "unchecked"})
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: RegistryPeer <connectString> <basePath> <sessionTimeoutMs>");
            System.exit(2);
        }
        int sessionMs = Integer.parseInt(args[2]);
        CuratorFramework client = CuratorFrameworkFactory.newClient(args[0], sessionMs, 5000, new ExponentialBackoffRetry(100, 3));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.err.println("not connected");
            System.exit(1);
        }
        ServiceDiscovery<Map> discovery = ServiceDiscoveryBuilder.builder(Map.class)
            .client(client).basePath(args[1]).serializer(new JsonInstanceSerializer<>(Map.class)).build();
        discovery.start();
        ObjectMapper json = new ObjectMapper();
        Map<String, ServiceInstance<Map>> mine = new ConcurrentHashMap<>();
        System.out.println("READY");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split(" ");
            try {
                switch (f[0]) {
                    case "names":
                        for (String n : discovery.queryForNames()) System.out.println(n);
                        break;
                    case "list":
                        for (ServiceInstance<Map> i : discovery.queryForInstances(f[1])) {
                            String uri = i.getUriSpec() == null ? "-" : i.buildUriSpec();
                            System.out.println(i.getId() + " " + i.getAddress() + " " + i.getPort() + " " + uri + " " + json.writeValueAsString(i.getPayload()));
                        }
                        break;
                    case "register": {
                        Map payload = new HashMap();
                        payload.put("peer", "curator");
                        ServiceInstance<Map> i = ServiceInstance.<Map>builder().name(f[1]).id(f[2]).address(f[3]).port(Integer.parseInt(f[4]))
                            .payload(payload).uriSpec(new UriSpec("{scheme}://{address}:{port}/c")).build();
                        discovery.registerService(i);
                        mine.put(f[2], i);
                        break;
                    }
                    case "unregister":
                        discovery.unregisterService(mine.remove(f[2]));
                        break;
                    default:
                        System.out.println("ERR unknown command " + f[0]);
                }
            } catch (Exception e) {
                System.out.println("ERR " + e);
            }
            System.out.println("END");
            System.out.flush();
        }
        discovery.close();
        client.close();
    }
}
