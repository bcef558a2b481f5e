package io.loraspark.train.io;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A test facility: named points in the trainer where the fault-matrix tests make a JVM die or a
 * task fail at an exact moment (a kill at a random time rarely lands inside a checkpoint write).
 * Inert unless the JVM is started with {@code -Dlora.faults=...}; it is read once, from system
 * properties only, and the point names are constants in the code, so no configuration file, data
 * row or checkpoint can reach it. When unset, {@link #reach} is one field read.
 *
 * <p>{@code -Dlora.faults=POINT:ACTION[@N][,...] -Dlora.faults.dir=DIR}: the N-th time (default 1)
 * this JVM reaches POINT, {@code halt} ends the JVM at once with status 137 (no shutdown hooks or
 * finally blocks, as SIGKILL) and {@code throw} throws an {@link IllegalStateException}; each fault
 * fires once across all JVMs, claimed by creating {@code DIR/POINT} (so a retried task attempt
 * passes). {@code -Dlora.faults.disk-full=BYTES} makes every {@link AtomicFiles} write of this JVM
 * fail with {@code IOException("No space left on device")} once it has written more than BYTES in
 * total, as a full output disk would (every output of a sweep but Spark's Parquet copies of the
 * leaderboard and metrics and the HTML report goes through {@link AtomicFiles}).
 */
public final class FaultPoints {
  /** The executor loads the base model (before the load). */
  public static final String BASE_LOAD = "base-load";

  /** After an optimizer step of an adapter (and its checkpoint, if one was due). */
  public static final String STEP = "step";

  /** Inside a checkpoint write: the optimizer moments are written, the state file is not. */
  public static final String CHECKPOINT_WRITE = "checkpoint-write";

  /** Inside an adapter's commit: its directory is written in the temp place, not yet moved. */
  public static final String COMMIT = "commit";

  private static final java.util.Set<String> POINTS =
      java.util.Set.of(BASE_LOAD, STEP, CHECKPOINT_WRITE, COMMIT);

  private record Fault(boolean halt, int nth) {}

  private static final Map<String, Fault> FAULTS = parse(System.getProperty("lora.faults", ""));
  private static final String DIR = System.getProperty("lora.faults.dir", "");
  private static final long DISK_BYTES =
      Long.parseLong(System.getProperty("lora.faults.disk-full", "-1"));
  private static final Map<String, AtomicInteger> REACHED = new ConcurrentHashMap<>();
  private static final AtomicLong WRITTEN = new AtomicLong();

  private FaultPoints() {}

  /** Halts the JVM or throws if a fault is set for {@code point} and due now; else nothing. */
  public static void reach(String point) {
    if (FAULTS.isEmpty()) {
      return;
    }
    Fault f = FAULTS.get(point);
    if (f == null
        || REACHED.computeIfAbsent(point, p -> new AtomicInteger()).incrementAndGet() != f.nth()
        || !claim(point)) {
      return;
    }
    System.err.println("lora.faults: " + (f.halt() ? "halting" : "throwing") + " at " + point);
    if (f.halt()) {
      Runtime.getRuntime().halt(137);
    }
    throw new IllegalStateException("lora.faults: injected failure at " + point);
  }

  /**
   * Counts {@code bytes} just written by {@link AtomicFiles} against the {@code disk-full} budget.
   *
   * @throws IOException "No space left on device" once this JVM has written more than the budget
   */
  static void written(long bytes) throws IOException {
    if (DISK_BYTES >= 0 && WRITTEN.addAndGet(bytes) > DISK_BYTES) {
      throw new IOException("No space left on device");
    }
  }

  /** Creates the marker of {@code point}; false if another JVM (or attempt) already fired it. */
  private static boolean claim(String point) {
    try {
      Files.createFile(Path.of(DIR, point));
      return true;
    } catch (FileAlreadyExistsException e) {
      return false;
    } catch (IOException e) {
      throw new IllegalStateException("lora.faults: cannot create marker in " + DIR + ": " + e, e);
    }
  }

  private static Map<String, Fault> parse(String spec) {
    Map<String, Fault> out = new HashMap<>();
    for (String item : spec.split(",")) {
      if (item.isBlank()) {
        continue;
      }
      String[] kv = item.trim().split(":", 2);
      String[] an = kv.length == 2 ? kv[1].split("@", 2) : new String[] {""};
      if (!POINTS.contains(kv[0]) || !an[0].equals("halt") && !an[0].equals("throw")) {
        throw new IllegalArgumentException(
            "lora.faults: '"
                + item
                + "' must be POINT:halt[@N] or POINT:throw[@N], POINT one of "
                + new java.util.TreeSet<>(POINTS));
      }
      out.put(kv[0], new Fault(an[0].equals("halt"), an.length == 2 ? Integer.parseInt(an[1]) : 1));
    }
    if (!out.isEmpty() && System.getProperty("lora.faults.dir", "").isEmpty()) {
      throw new IllegalArgumentException("lora.faults needs -Dlora.faults.dir (fire-once markers)");
    }
    return Map.copyOf(out);
  }
}
