package dev.farad.bench.kstreams;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * Voter on Kafka Streams, the peer of farad in `npm run bench` (bench/kstreams.ts).
 *
 * <pre>
 * java -cp 'target/kstreams-voter.jar:target/lib/*' dev.farad.bench.kstreams.VoterStreams \
 *   --bootstrap 127.0.0.1:9092 --application-id voter-ks --input votes[,warmup-votes] --output vote-results \
 *   --state-dir /tmp/ks-state --schemas config/schemas/voter --area-codes examples/voter/area-codes.ts \
 *   [--threads 2] [--cache-max-bytes 0] [--commit-interval-ms 100] [--max-votes-per-phone 2]
 * </pre>
 *
 * Exactly-once (v2), in-memory stores with changelogs, no standbys. Prints {@code running} once,
 * the first time the client reaches RUNNING, and {@code assigned <partitions>} (the input partitions
 * of its active tasks) every time it does; SIGTERM closes the client (leaving the group) and exits.
 * The input and output topics must exist; several input topics (same partition count) share the
 * tasks and stores, partition by partition (the bench warms the JVM up on a second one).
 */
public final class VoterStreams {
  private VoterStreams() {}

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = parseArgs(argv);
    VoterCodec codec = new VoterCodec(new File(required(args, "schemas")));
    codec.selfCheck();
    byte[][] states = VoterCodec.stateTable(loadAreaCodes(new File(required(args, "area-codes"))));
    int maxVotesPerPhone = Integer.parseInt(args.getOrDefault("max-votes-per-phone", "2"));
    long cacheMaxBytes = Long.parseLong(args.getOrDefault("cache-max-bytes", "0"));
    List<String> inputs = List.of(required(args, "input").split(","));

    Topology topology = new Topology();
    topology.addSource("votes", new ByteArrayDeserializer(), new ByteArrayDeserializer(), inputs.toArray(String[]::new));
    topology.addProcessor("voter", () -> new VoterProcessor(codec, states, maxVotesPerPhone), "votes");
    topology.addStateStore(store(Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore(VoterProcessor.VOTES_BY_PHONE), Serdes.Long(), Serdes.Integer()), cacheMaxBytes), "voter");
    topology.addStateStore(store(Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore(VoterProcessor.VOTES_BY_CONTESTANT), Serdes.Integer(), Serdes.Long()), cacheMaxBytes), "voter");
    // No StreamPartitioner: the producer's default partitioner (murmur2 of the key), as farad's outputs.
    topology.addSink("results", required(args, "output"), new ByteArraySerializer(), new ByteArraySerializer(), "voter");

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, required(args, "application-id"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, required(args, "bootstrap"));
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args.getOrDefault("threads", "2")));
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cacheMaxBytes);
    props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    props.put(StreamsConfig.STATE_DIR_CONFIG, required(args, "state-dir"));
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // No global stores here; set only to silence a start-up warning (5.0's default).
    props.put(StreamsConfig.PROCESSING_EXCEPTION_HANDLER_GLOBAL_ENABLED_CONFIG, true);
    // Unset: exactly-once's default of 100 ms, the same as farad's commitIntervalMs in the bench.
    if (args.containsKey("commit-interval-ms")) props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(args.get("commit-interval-ms")));

    KafkaStreams streams = new KafkaStreams(topology, props);
    CountDownLatch stopped = new CountDownLatch(1);
    boolean[] failed = { false };
    boolean[] announced = { false };
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("uncaught exception in a stream thread:");
      e.printStackTrace();
      return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.setStateListener((next, previous) -> {
      System.err.println("state " + previous + " -> " + next);
      if (next == KafkaStreams.State.RUNNING) {
        synchronized (announced) {
          if (!announced[0]) System.out.println("running");
          announced[0] = true;
          TreeSet<Integer> partitions = new TreeSet<>();
          streams.metadataForLocalThreads().forEach(t -> t.activeTasks().forEach(task -> task.topicPartitions().forEach(tp -> {
            if (inputs.contains(tp.topic())) partitions.add(tp.partition());
          })));
          System.out.println("assigned " + String.join(",", partitions.stream().map(String::valueOf).toList()));
          System.out.flush();
        }
      } else if (next == KafkaStreams.State.ERROR) {
        // main exits, not this stream thread: System.exit here would run close(), which waits for this thread.
        failed[0] = true;
        stopped.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      close(streams);
      stopped.countDown();
    }, "shutdown"));
    streams.start();
    stopped.await();
    if (failed[0]) {
      close(streams);
      System.exit(1);
    }
  }

  /** Leaves the group, so the bench can delete it right away. */
  private static void close(KafkaStreams streams) {
    streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP).withTimeout(Duration.ofSeconds(8)));
  }

  /** Caching is off with a zero cache anyway; enabling it only when there is a cache makes the flag one switch. */
  private static <S extends KeyValueStore<?, ?>> StoreBuilder<S> store(StoreBuilder<S> builder, long cacheMaxBytes) {
    return cacheMaxBytes > 0 ? builder.withCachingEnabled() : builder.withCachingDisabled();
  }

  /** AREA_CODE_STATES out of examples/voter/area-codes.ts, so there is one copy of the table. */
  static Map<Integer, String> loadAreaCodes(File file) throws IOException {
    Matcher m = Pattern.compile("\\[\\s*(\\d+)\\s*,\\s*'([^']*)'\\s*\\]").matcher(Files.readString(file.toPath()));
    Map<Integer, String> codes = new HashMap<>();
    while (m.find()) {
      int code = Integer.parseInt(m.group(1));
      if (code >= 1000) throw new IllegalArgumentException(file + ": area code " + code + " has more than three digits");
      codes.put(code, m.group(2));
    }
    if (codes.size() < 100) throw new IllegalArgumentException(file + ": found only " + codes.size() + " [code, 'state'] entries");
    return codes;
  }

  private static Map<String, String> parseArgs(String[] argv) {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i < argv.length; i += 2) {
      if (!argv[i].startsWith("--") || i + 1 >= argv.length) throw new IllegalArgumentException("expected --name value pairs, got " + String.join(" ", argv));
      args.put(argv[i].substring(2), argv[i + 1]);
    }
    return args;
  }

  private static String required(Map<String, String> args, String name) {
    String value = args.get(name);
    if (value == null) throw new IllegalArgumentException("missing --" + name);
    return value;
  }
}
