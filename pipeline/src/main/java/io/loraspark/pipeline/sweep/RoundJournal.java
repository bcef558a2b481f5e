package io.loraspark.pipeline.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.loop.AdapterKey;
import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.spark.GroupTask;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The record of a sweep's finished rounds, {@code <run>/rounds/round-N.json}: the round's outcomes
 * under the key of the tasks that produced them, so a rerun (after a driver crash, or of a finished
 * run) continues at the first unfinished round instead of re-deciding earlier ones.
 *
 * <p>Key format {@value #VERSION}: SHA-256 of the line {@code lora-spark round key v2}, then per
 * task (in task order) a line {@code task model=<dir> data=<uri> stop_at=<step>} and per adapter a
 * line {@code adapter=<id>} followed by its {@link AdapterKey#settings} fields as {@code
 * name=value}, space-separated. A journal with another key format or key is reported in one line
 * and its round runs again (its adapters then resume from their checkpoints); a format-1 journal
 * (the hash of the task records' text) whose key still matches is used, noted.
 */
final class RoundJournal {
  /** The round key format this build writes. */
  static final int VERSION = 2;

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;

  /** The journal of the run in {@code runDir}. */
  RoundJournal(Path runDir) {
    this.dir = runDir.resolve("rounds");
  }

  /**
   * What the journal says of round {@code round} (1-based) run as {@code tasks}.
   *
   * @param outcomes the recorded outcomes, or null when the round must run
   * @param note one line for the user when the record was not used as is, else null
   */
  record Read(List<AdapterOutcome> outcomes, String note) {}

  /** The file of round {@code round} (1-based). */
  Path file(int round) {
    return dir.resolve("round-" + round + ".json");
  }

  /** Reads round {@code round}'s record for {@code tasks}; never throws for a bad file. */
  Read read(int round, List<GroupTask> tasks) {
    Path file = file(round);
    if (!Files.isRegularFile(file)) {
      return new Read(null, null);
    }
    String again = "; round " + round + " runs again (adapters resume from their checkpoints)";
    JsonNode n;
    List<AdapterOutcome> outcomes;
    try {
      n = JSON.readTree(file.toFile());
      outcomes = List.of(JSON.treeToValue(n.get("outcomes"), AdapterOutcome[].class));
    } catch (IOException | RuntimeException e) {
      return new Read(null, file + ": unreadable (" + oneLine(e) + ")" + again);
    }
    int format = n.path("plan_format").asInt(AdapterKey.LEGACY_VERSION);
    String saved = n.path("plan").asText();
    if (format == VERSION) {
      return saved.equals(key(tasks))
          ? new Read(outcomes, null)
          : new Read(
              null, file + ": recorded for another plan (model, data, rung or settings)" + again);
    }
    if (format == AdapterKey.LEGACY_VERSION && saved.equals(legacyKey(tasks))) {
      return new Read(outcomes, file + ": round key format 1 (an older lora-spark) matches; used");
    }
    return new Read(
        null,
        file
            + ": round key format "
            + format
            + (format == AdapterKey.LEGACY_VERSION
                ? " (the task records' text of an older lora-spark) no longer matches"
                : " is not this build's format " + VERSION)
            + again);
  }

  /** Records round {@code round}'s outcomes under the key of {@code tasks}, atomically. */
  void write(int round, List<GroupTask> tasks, List<AdapterOutcome> outcomes) {
    ObjectNode n = JSON.createObjectNode();
    n.put("plan", key(tasks));
    n.put("plan_format", VERSION);
    n.set("outcomes", JSON.valueToTree(outcomes));
    AtomicFiles.createDirectories(dir);
    try {
      AtomicFiles.writeString(file(round), JSON.writeValueAsString(n));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file(round) + ": " + e.getMessage(), e);
    }
  }

  /** The format-2 key of a round's tasks (see the class comment). */
  static String key(List<GroupTask> tasks) {
    StringBuilder b = new StringBuilder("lora-spark round key v" + VERSION + "\n");
    for (GroupTask t : tasks) {
      b.append("task model=").append(t.modelDir());
      b.append(" data=").append(t.dataUri());
      b.append(" stop_at=").append(t.stopAt());
      b.append(" precision=").append(t.precision().key()).append('\n');
      for (AdapterSpec a : t.adapters()) {
        b.append("adapter=").append(a.id());
        AdapterKey.settings(a)
            .build()
            .fields()
            .forEach((k, v) -> b.append(' ').append(k).append('=').append(v));
        b.append('\n');
      }
    }
    return AdapterKey.sha256Hex(b.toString());
  }

  /** Format 1's key: the hash of the tasks' fields with the adapters' records' text. */
  static String legacyKey(List<GroupTask> tasks) {
    StringBuilder b = new StringBuilder();
    for (GroupTask t : tasks) {
      b.append(t.modelDir()).append('|').append(t.dataUri()).append('|').append(t.stopAt());
      t.adapters().forEach(a -> b.append('|').append(a));
      b.append('\n');
    }
    return AdapterKey.sha256Hex(b.toString());
  }

  private static String oneLine(Exception e) {
    String m = String.valueOf(e.getMessage());
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }
}
