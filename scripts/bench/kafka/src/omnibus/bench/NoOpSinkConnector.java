package omnibus.bench;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.sink.SinkConnector;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;

/**
 * The Kafka Connect twin of the benchmark's NullSink (scripts/bench/null-sink): it does nothing
 * with the records it is handed, so that the benchmark measures Kafka and Connect, not a
 * provider. Its files are the NullSink's, so that one reader follows both:
 *
 * progress.file: each task keeps "<file>.<task>" holding "<records> <epoch ms of the last put>
 * <partitions assigned>", rewritten in place after every put and every assignment.
 *
 * latency.file: each record whose (JsonConverter-decoded) value carries a numeric sentAt adds
 * "now - sentAt" in ms to that file: the produce-to-hand-off latency.
 */
public class NoOpSinkConnector extends SinkConnector {
  static final String TASK_ID = "task.id";
  private Map<String, String> config;

  @Override
  public void start(Map<String, String> props) {
    config = props;
  }

  @Override
  public Class<? extends Task> taskClass() {
    return NoOpSinkTask.class;
  }

  @Override
  public List<Map<String, String>> taskConfigs(int maxTasks) {
    List<Map<String, String>> configs = new ArrayList<>();
    for (int task = 0; task < maxTasks; task++) {
      Map<String, String> taskConfig = new HashMap<>(config);
      taskConfig.put(TASK_ID, Integer.toString(task));
      configs.add(taskConfig);
    }
    return configs;
  }

  @Override
  public void stop() {}

  @Override
  public ConfigDef config() {
    return new ConfigDef()
        .define("progress.file", ConfigDef.Type.STRING, "", ConfigDef.Importance.LOW, "Prefix of the per-task progress files; none if empty.")
        .define("latency.file", ConfigDef.Type.STRING, "", ConfigDef.Importance.LOW, "Where to append the latency (ms) of every record with a numeric sentAt; none if empty.");
  }

  @Override
  public String version() {
    return "0.0.0";
  }

  /** Epoch milliseconds with sub-millisecond precision, comparable between processes. */
  static double preciseNow() {
    Instant now = Instant.now();
    return now.getEpochSecond() * 1000.0 + now.getNano() / 1e6;
  }

  public static class NoOpSinkTask extends SinkTask {
    private RandomAccessFile progress;
    private FileOutputStream latency;
    private long count;
    private double lastAt;
    private int partitions;

    @Override
    public String version() {
      return "0.0.0";
    }

    @Override
    public void start(Map<String, String> props) {
      try {
        String progressFile = props.getOrDefault("progress.file", "");
        if (!progressFile.isEmpty()) progress = new RandomAccessFile(progressFile + "." + props.get(TASK_ID), "rw");
        String latencyFile = props.getOrDefault("latency.file", "");
        if (!latencyFile.isEmpty()) latency = new FileOutputStream(latencyFile, true);
        writeProgress();
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    public void open(Collection<TopicPartition> assigned) {
      partitions += assigned.size();
      writeProgress();
    }

    @Override
    public void close(Collection<TopicPartition> revoked) {
      partitions -= revoked.size();
      writeProgress();
    }

    @Override
    public void put(Collection<SinkRecord> records) {
      if (records.isEmpty()) return;
      double now = preciseNow();
      count += records.size();
      lastAt = now;
      writeProgress();
      if (latency == null) return;
      StringBuilder lines = new StringBuilder();
      for (SinkRecord record : records) {
        if (record.value() instanceof Map<?, ?> value && value.get("sentAt") instanceof Number sentAt) {
          lines.append(String.format(Locale.ROOT, "%.2f%n", now - sentAt.doubleValue()));
        }
      }
      try {
        if (lines.length() > 0) latency.write(lines.toString().getBytes(StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    }

    private void writeProgress() {
      if (progress == null) return;
      // Fixed width, so that a shorter line never leaves the end of a longer one behind.
      String line = String.format(Locale.ROOT, "%12d %20.3f %4d%n", count, lastAt, partitions);
      try {
        progress.seek(0);
        progress.write(line.getBytes(StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    public void stop() {
      try {
        if (progress != null) progress.close();
        if (latency != null) latency.close();
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
