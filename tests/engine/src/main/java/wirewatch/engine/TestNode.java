package wirewatch.engine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.node.MockNode;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

/**
 * One OpenSearch node for the test session: HTTP over netty4 and the common analysis module
 * (the english analyzer), on 127.0.0.1 and the port given as the first argument. Plugins are
 * loaded from the classpath as OpenSearch's own integration tests load them, so no
 * distribution is needed. It prints one line "started PORT MILLIS" once it serves, and runs
 * until it is killed (a shutdown hook closes the node).
 */
public final class TestNode {
    private TestNode() {}

    public static void main(String[] args) throws Exception {
        long begin = System.nanoTime();
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 9250;
        Path home = args.length > 1 ? Path.of(args[1]) : Files.createTempDirectory("wirewatch-node");
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("cluster.name", "wirewatch-test")
            .put("node.name", "wirewatch-test-node")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", port)
            .put("transport.port", 0)
            .put("transport.type", "netty4")
            .put("http.type", "netty4")
            // A test machine's disk may be nearly full; never turn indices read-only for that.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            // Many test indices are created and deleted; keep the ceiling out of the way.
            .put("cluster.max_shards_per_node", 10000)
            .put("action.auto_create_index", true)
            .build();
        LogConfigurator.configureWithoutConfig(settings);
        Node node = new MockNode(settings, List.of(Netty4Plugin.class, CommonAnalysisPlugin.class));
        node.start();
        long millis = (System.nanoTime() - begin) / 1_000_000;
        System.out.println("started " + port + " " + millis);
        System.out.flush();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception ignored) {
                // The process is ending either way.
            }
            stopped.countDown();
        }));
        stopped.await();
    }
}
