package omnibus.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The benchmark's Kafka client: one long-lived JVM (so that its JIT is warm for every phase)
 * driven line by line on stdin by scripts/bench/kafka.ts, answering one JSON line per command on
 * stdout. The messages come from the benchmark's own workload (workload.ts), loaded before the
 * clock starts, as Omnibus's REST bodies are serialised before its clock starts.
 *
 *   topic NAME PARTITIONS FLUSH_MESSAGES   create a topic (FLUSH_MESSAGES 0: the broker's default)
 *   messages COUNT, then COUNT lines "key TAB value-json"   load the messages of the next send
 *   produce TOPIC                           send them all with one producer, as fast as it takes them; wait for every acknowledgement
 *   paced TOPIC RATE BATCH WARM_UP          send them BATCH at a time on a schedule of RATE msg/s; each value from WARM_UP on gets "sentAt"
 *   quit
 *
 * The producer keeps Kafka 3.9's defaults (acks=all, idempotence, linger.ms=0, batch.size 16 KiB).
 */
public final class BenchClient {
  private static final PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    Properties config = new Properties();
    config.put("bootstrap.servers", bootstrap);
    config.put("key.serializer", ByteArraySerializer.class.getName());
    config.put("value.serializer", ByteArraySerializer.class.getName());
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 20);
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap)); KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(config)) {
      List<byte[]> keys = new ArrayList<>();
      List<String> values = new ArrayList<>();
      String line;
      while ((line = in.readLine()) != null) {
        String[] words = line.split(" ");
        try {
          switch (words[0]) {
            case "topic" -> {
              NewTopic topic = new NewTopic(words[1], Integer.parseInt(words[2]), (short) 1);
              if (!words[3].equals("0")) topic.configs(Map.of("flush.messages", words[3]));
              admin.createTopics(List.of(topic)).all().get();
              awaitLeaders(admin, producer, words[1]);
              answer("{\"ok\":\"topic\"}");
            }
            case "messages" -> {
              int count = Integer.parseInt(words[1]);
              keys.clear();
              values.clear();
              for (int i = 0; i < count; i++) {
                String message = in.readLine();
                int tab = message.indexOf('\t');
                keys.add(message.substring(0, tab).getBytes(StandardCharsets.UTF_8));
                values.add(message.substring(tab + 1));
              }
              answer("{\"ok\":\"messages\",\"count\":" + count + "}");
            }
            case "produce" -> {
              List<byte[]> encoded = new ArrayList<>(values.size());
              for (String value : values) encoded.add(value.getBytes(StandardCharsets.UTF_8));
              AtomicReference<Exception> failure = new AtomicReference<>();
              long started = System.nanoTime();
              for (int i = 0; i < encoded.size(); i++) {
                producer.send(new ProducerRecord<>(words[1], keys.get(i), encoded.get(i)), (metadata, error) -> {
                  if (error != null) failure.compareAndSet(null, error);
                });
              }
              producer.flush();
              double seconds = (System.nanoTime() - started) / 1e9;
              if (failure.get() != null) throw failure.get();
              answer(String.format(Locale.ROOT, "{\"ok\":\"produce\",\"seconds\":%.6f}", seconds));
            }
            case "paced" -> {
              paced(producer, words[1], Double.parseDouble(words[2]), Integer.parseInt(words[3]), Integer.parseInt(words[4]), keys, values);
              answer("{\"ok\":\"paced\"}");
            }
            case "quit" -> {
              return;
            }
            default -> throw new IllegalArgumentException("unknown command " + words[0]);
          }
        } catch (Exception e) {
          Throwable cause = e.getCause() != null ? e.getCause() : e;
          answer("{\"error\":\"" + String.valueOf(cause).replace("\\", "\\\\").replace("\"", "'") + "\"}");
        }
      }
    }
  }

  /**
   * Waits until every partition of a new topic has a leader, and the producer knows them, so that
   * no measured send is retried for NOT_LEADER_OR_FOLLOWER. Right after its creation the broker
   * may still answer that it does not host the topic (its metadata has not caught up): that is
   * waited out too.
   */
  private static void awaitLeaders(Admin admin, KafkaProducer<byte[], byte[]> producer, String topic) throws Exception {
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (!everyPartitionLed(admin, producer, topic)) {
      if (System.nanoTime() > deadline) throw new IllegalStateException("the partitions of " + topic + " have no leader known to the producer after 60 s");
      Thread.sleep(20);
    }
  }

  private static boolean everyPartitionLed(Admin admin, KafkaProducer<byte[], byte[]> producer, String topic) throws Exception {
    try {
      return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().stream().allMatch(partition -> partition.leader() != null)
          && producer.partitionsFor(topic).stream().allMatch(partition -> partition.leader() != null);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof UnknownTopicOrPartitionException) return false;
      throw e;
    } catch (UnknownTopicOrPartitionException e) {
      return false;
    }
  }

  /** Sends the loaded messages `batch` at a time on schedule (not waiting for earlier acknowledgements), as the Omnibus latency phase does. */
  private static void paced(KafkaProducer<byte[], byte[]> producer, String topic, double rate, int batch, int warmUp, List<byte[]> keys, List<String> values) throws Exception {
    AtomicReference<Exception> failure = new AtomicReference<>();
    double intervalNanos = batch / rate * 1e9;
    long started = System.nanoTime();
    for (int sent = 0; sent < values.size(); sent += batch) {
      long due = started + Math.round((sent / batch) * intervalNanos);
      long wait = due - System.nanoTime();
      if (wait > 1_000_000) LockSupport.parkNanos(wait);
      String sentAt = String.format(Locale.ROOT, ",\"sentAt\":%.3f}", NoOpSinkConnector.preciseNow());
      for (int i = sent; i < Math.min(values.size(), sent + batch); i++) {
        String value = values.get(i);
        if (i >= warmUp) value = value.substring(0, value.length() - 1) + sentAt;
        producer.send(new ProducerRecord<>(topic, keys.get(i), value.getBytes(StandardCharsets.UTF_8)), (metadata, error) -> {
          if (error != null) failure.compareAndSet(null, error);
        });
      }
    }
    producer.flush();
    if (failure.get() != null) throw failure.get();
  }

  private static void answer(String json) {
    out.println(json);
  }
}
