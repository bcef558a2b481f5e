package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.e2e.SweepClusterIT.Driver;
import io.loraspark.e2e.SweepClusterIT.Run;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The fault matrix of a distributed sweep: one small sweep (stories260K, two adapters one per task,
 * 8 steps, a checkpoint every 2) run undisturbed (in {@code local[2,4]}, the cheaper place; the
 * cluster gives the same bits), then under each fault on a standalone cluster of two 1-core workers
 * or locally, injected at a named point with {@code -Dlora.faults} ({@link
 * io.loraspark.train.io.FaultPoints}) because a kill at a random moment rarely lands inside a
 * checkpoint write or a commit. After each fault and the rerun a user would do, the run must have
 * every adapter exactly once, nothing partial in its output (no temp files; every safetensors file
 * opens, every JSON file parses, every adapter loads) and the undisturbed run's leaderboard,
 * outcomes and per-step metrics <em>bit for bit</em>: resuming restores the weights, AdamW moments,
 * data position and micro-step (the dropout seed) exactly, each task trains one adapter (so a
 * retried task fuses the same batches as the first), and every task runs one BLAS thread, so the
 * float operations are the same in the same order.
 *
 * <p>Executor kills need the cluster (local mode has one JVM); the failed task attempt, the
 * corrupted checkpoint and the full disk run in {@code local[2,4]}. The killed driver is {@link
 * SweepResumeIT}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FaultMatrixIT {
  static final Path ROOT = LauncherIT.ROOT;

  static final String SWEEP =
      """
      model: '%s'
      data: '%s'
      adapters_per_task: 1
      checkpoint_every: 2
      defaults:
        lr: 2.0e-3
        steps: 8
        batch_size: 4
        targets: [q, v]
      grid:
        rank: [2, 4]
      pruning: none
      """;

  static final int STEPS = 8;

  /** Spark's task-failure limit in local mode: 2 threads, 4 attempts per task. */
  static final String LOCAL = "master: 'local[2,4]'\n";

  static final ObjectMapper STRICT =
      new ObjectMapper()
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  private static final Pattern LEFTOVER = Pattern.compile("\\..+\\.(tmp|old)|_temporary");

  @TempDir static Path tmp;

  static Path clusterConfig;
  static Path localConfig;

  /** The undisturbed run every disturbed one is compared with. */
  static Run reference;

  static List<String> ids;

  /** Measured times, printed at the end for docs/reliability.md. */
  static final Map<String, String> times = new TreeMap<>();

  @BeforeAll
  static void startCluster() throws Exception {
    SweepClusterIT.tmp = tmp;
    SweepClusterIT.startCluster();
    String sweep =
        SWEEP.formatted(
            ROOT.resolve("models/stories260K").toAbsolutePath(),
            tmp.resolve("train.jsonl").toAbsolutePath());
    clusterConfig = Files.writeString(tmp.resolve("matrix.yaml"), sweep);
    localConfig = Files.writeString(tmp.resolve("matrix-local.yaml"), sweep + LOCAL);
  }

  @AfterAll
  static void stopCluster() {
    SweepClusterIT.stopCluster();
    System.err.println("FaultMatrixIT: " + times);
  }

  @Test
  @Order(1)
  void undisturbedSweep() throws Exception {
    Run a = reference();
    List<List<String>> board = SweepClusterIT.leaderboard(a.dir());
    assertThat(board).extracting(r -> r.get(6)).containsOnly("ok");
    assertThat(board).extracting(r -> r.get(10)).containsOnly(String.valueOf(STEPS));
    assertThat(ids).hasSize(2).doesNotHaveDuplicates();
    assertNothingPartial(a.dir());
  }

  @Test
  @Order(2)
  void executorKilledWhileLoadingTheBaseModel() throws Exception {
    executorKilledAt("base-load", "base-load:halt");
  }

  @Test
  @Order(3)
  void executorKilledMidTraining() throws Exception {
    // the 5th step this executor takes: past the checkpoint at step 4, before the one at 6
    executorKilledAt("step", "step:halt@5");
  }

  @Test
  @Order(4)
  void executorKilledWhileWritingACheckpoint() throws Exception {
    // its second checkpoint: the first one is whole, the second half written
    Run b = executorKilledAt("checkpoint-write", "checkpoint-write:halt@2");
    assertThat(b.err()).contains("left by an interrupted write");
  }

  @Test
  @Order(5)
  void executorKilledWhileCommittingAnAdapter() throws Exception {
    Run b = executorKilledAt("commit", "commit:halt");
    assertThat(b.err()).contains("left by an interrupted write");
  }

  /** An exception in a task (local mode): Spark retries it, and the retry resumes. */
  @Test
  @Order(6)
  void aFailedTaskAttemptIsRetriedAndResumes() throws Exception {
    Path markers = markers("task-failure");
    Run b = finish(local("task-failure", "run", faults("step:throw@5", markers)));
    assertThat(b.code()).as("exit code; stderr:%n%s", b.err()).isZero();
    assertThat(markers.resolve("step")).as("the fault fired").exists();
    assertThat(b.err()).contains("lora.faults: injected failure at step");
    assertThat(b.err()).containsPattern("group \\d attempt 1: 1 adapters \\(1 resumed\\)");
    assertSameAsReference(b);
    times.put("task-failure", seconds(b));
  }

  /**
   * A checkpoint whose bytes change on disk between runs: the sweep dies (the whole local JVM, as a
   * killed driver) after checkpoints exist, the newest checkpoint of one adapter gets bytes flipped
   * in its weights' data section (its header still parses, only the SHA-256 can tell), and the
   * rerun skips it as damaged and trains that adapter from the start instead of loading it.
   */
  @Test
  @Order(7)
  void aCorruptedCheckpointIsDetectedAndRetrained() throws Exception {
    Path markers = markers("corrupt");
    Run killed = finish(local("corrupt", "run", faults("step:halt@6", markers)));
    assertThat(killed.code()).as("the halted run; stderr:%n%s", killed.err()).isEqualTo(137);
    Path out = killed.dir();
    String victim = null;
    Path checkpoint = null;
    for (String id : ids) {
      Path newest = newestCheckpoint(out, id);
      if (newest != null) {
        victim = id;
        checkpoint = newest;
        break;
      }
    }
    assertThat(checkpoint).as("a checkpoint of either adapter under %s", out).isNotNull();
    Path weights = checkpoint.resolve(PeftAdapter.WEIGHTS_FILE);
    byte[] bytes = Files.readAllBytes(weights);
    for (int i = bytes.length - 8; i < bytes.length; i++) {
      bytes[i] ^= (byte) 0x5A;
    }
    Files.write(weights, bytes);
    SafetensorsFile.open(weights).close(); // still a well-formed file

    Run rerun = finish(local("corrupt", "run", ""));
    assertThat(rerun.code()).as("rerun exit code; stderr:%n%s", rerun.err()).isZero();
    assertThat(rerun.err())
        .contains(checkpoint + ": damaged checkpoint skipped")
        .contains(PeftAdapter.WEIGHTS_FILE + " fails its SHA-256 check");
    int group = ids.indexOf(victim);
    assertThat(rerun.err())
        .as("%s (group %d) trained from step 0", victim, group)
        .containsPattern("group " + group + " attempt 0: 1 adapters \\(0 resumed\\)");
    assertSameAsReference(rerun);
    times.put("corrupt-checkpoint", seconds(killed) + " + rerun " + seconds(rerun));
  }

  /**
   * A full output disk: every write through AtomicFiles (all outputs but Spark's Parquet copies of
   * the leaderboard and metrics, written after training) fails past a budget of 2.5 checkpoints.
   * The run fails with exit 1 and one error line naming the path, leaves nothing partial, and a
   * rerun with space finishes with the undisturbed leaderboard.
   */
  @Test
  @Order(8)
  void aFullDiskFailsTheRunCleanlyAndARerunCompletes() throws Exception {
    long checkpointBytes = 0;
    Path one = newestCheckpoint(reference().dir(), ids.get(0));
    try (Stream<Path> s = Files.list(one)) {
      for (Path f : s.toList()) {
        checkpointBytes += Files.size(f);
      }
    }
    long budget = checkpointBytes * 5 / 2;
    Run full = finish(local("disk-full", "run", "-Dlora.faults.disk-full=" + budget));
    assertThat(full.code()).as("exit code; stderr:%n%s", full.err()).isEqualTo(1);
    List<String> errors = full.err().lines().filter(l -> l.startsWith("error: ")).toList();
    assertThat(errors).as("error lines in:%n%s", full.err()).hasSize(1);
    String error = errors.get(0);
    assertThat(error)
        .contains("No space left on device")
        .contains(full.dir().toString())
        .as("no stack trace in the error line")
        .doesNotContain("\tat ", " at io.loraspark");
    assertThat(full.dir().resolve("leaderboard.csv")).doesNotExist();
    assertNothingPartial(full.dir());

    Run rerun = finish(local("disk-full", "run", ""));
    assertThat(rerun.code()).as("rerun exit code; stderr:%n%s", rerun.err()).isZero();
    assertSameAsReference(rerun);
    times.put(
        "disk-full",
        seconds(full) + " (budget " + budget + " bytes) + rerun " + seconds(rerun) + "; " + error);
  }

  /**
   * Runs the sweep on the cluster with {@code fault} set on the executors, and checks that the
   * fault killed an executor, Spark retried its task, and the run matches the undisturbed one.
   */
  static Run executorKilledAt(String name, String fault) throws Exception {
    reference();
    Path markers = markers(name);
    Path out = Files.createDirectories(tmp.resolve(name)).resolve("run");
    Driver d =
        SweepClusterIT.submitSweep(
            out,
            name,
            clusterConfig,
            List.of(
                "spark.executor.extraJavaOptions="
                    + SweepClusterIT.executorOpts
                    + " "
                    + faults(fault, markers)));
    Run b = SweepClusterIT.finish(d);
    assertThat(b.code()).as("exit code; driver stderr:%n%s", b.err()).isZero();
    assertThat(markers.resolve(name)).as("the fault fired").exists();
    assertThat(b.err()).as("the driver saw the executor die").contains("Lost task");
    assertSameAsReference(b);
    times.put(name, seconds(b));
    return b;
  }

  static synchronized Run reference() throws Exception {
    if (reference == null) {
      reference = finish(local("reference", "run", ""));
      assertThat(reference.code()).as("undisturbed; stderr:%n%s", reference.err()).isZero();
      ids =
          SweepClusterIT.leaderboard(reference.dir()).stream().map(r -> r.get(1)).sorted().toList();
      times.put("reference", seconds(reference));
    }
    return reference;
  }

  /**
   * The disturbed run against the reference: each adapter exactly once (leaderboard, round
   * outcomes, adapter directories, each step once in the metrics), the same leaderboard and the
   * same full-precision losses and per-step metrics, and nothing partial.
   */
  static void assertSameAsReference(Run b) throws IOException {
    Path a = reference.dir();
    List<List<String>> board = SweepClusterIT.leaderboard(b.dir());
    assertThat(board).extracting(r -> r.get(1)).containsExactlyInAnyOrderElementsOf(ids);
    // rank, adapter_id, method, lora_rank, lr_ratio, eval_loss, status, ..., steps, train_loss,
    // base_eval_loss, trainable_params
    int[] cols = {0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13};
    assertThat(SweepClusterIT.project(board, cols))
        .as("leaderboard vs the undisturbed run's")
        .isEqualTo(SweepClusterIT.project(SweepClusterIT.leaderboard(a), cols));
    Map<String, JsonNode> ra = SweepClusterIT.outcomes(a);
    Map<String, JsonNode> rb = SweepClusterIT.outcomes(b.dir()); // fails on a duplicate
    assertThat(rb.keySet()).containsExactlyElementsOf(ids);
    for (String id : ids) {
      for (String f : List.of("evalLoss", "trainLoss", "baseEvalLoss", "steps", "status")) {
        assertThat(rb.get(id).get(f)).as("%s of %s", f, id).isEqualTo(ra.get(id).get(f));
      }
    }
    // adapter_id, step, train_loss, eval_loss, lr, grad_norm, tokens (not tokens_per_s)
    int[] metricCols = {0, 1, 2, 3, 4, 5, 6};
    List<List<String>> metrics = SweepClusterIT.csv(b.dir().resolve("metrics.csv"));
    for (String id : ids) {
      assertThat(metrics.stream().filter(r -> r.get(0).equals(id)).map(r -> r.get(1)))
          .as("metric steps of %s", id)
          .containsExactlyElementsOf(
              Stream.iterate(1, i -> i + 1).limit(STEPS).map(String::valueOf).toList());
    }
    assertThat(SweepClusterIT.project(metrics, metricCols))
        .isEqualTo(
            SweepClusterIT.project(SweepClusterIT.csv(a.resolve("metrics.csv")), metricCols));
    try (Stream<Path> s = Files.list(b.dir().resolve("adapters"))) {
      assertThat(s.map(p -> p.getFileName().toString())).containsExactlyInAnyOrderElementsOf(ids);
    }
    assertNothingPartial(b.dir());
  }

  /**
   * No temp or half-moved entry anywhere under {@code out}, no hidden file but Hadoop's {@code
   * .crc}, every safetensors file opens (its header checked against its size), every JSON file
   * parses strictly, and every adapter directory loads on the base model.
   */
  static void assertNothingPartial(Path out) throws IOException {
    ModelConfig model = ModelConfig.load(ROOT.resolve("models/stories260K"));
    List<Path> all;
    try (Stream<Path> s = Files.walk(out)) {
      all = s.toList();
    }
    for (Path p : all) {
      String name = p.getFileName().toString();
      assertThat(LEFTOVER.matcher(name).matches()).as("leftover %s", p).isFalse();
      if (name.startsWith(".")) {
        assertThat(name).as("hidden file %s", p).endsWith(".crc");
      } else if (name.endsWith(".safetensors")) {
        SafetensorsFile.open(p).close();
      } else if (name.endsWith(".json")) {
        STRICT.readTree(p.toFile());
      }
      if (Files.isRegularFile(p.resolve(PeftAdapter.CONFIG_FILE))) {
        PeftAdapter.load(p, model, DataType.FLOAT); // adapters, best, each checkpoint
      }
    }
  }

  /** The newest whole checkpoint of {@code id} in a run, or null. */
  static Path newestCheckpoint(Path out, String id) throws IOException {
    Path dir = out.resolve("checkpoints").resolve(id);
    if (!Files.isDirectory(dir)) {
      return null;
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().matches("step-\\d{6}"))
          .max(Path::compareTo)
          .orElse(null);
    }
  }

  static Path markers(String name) throws IOException {
    return Files.createDirectories(tmp.resolve("markers-" + name));
  }

  static String faults(String spec, Path markers) {
    return "-Dlora.faults=" + spec + " -Dlora.faults.dir=" + markers;
  }

  /**
   * {@code bin/lora-pipeline train --config} in {@code local[2,4]} with {@code javaOpts} added to
   * the JVM; the same run id and output directory for a rerun, as a user would.
   */
  static Driver local(String name, String runId, String javaOpts) throws IOException {
    Path out = Files.createDirectories(tmp.resolve(name)).resolve(runId);
    ProcessBuilder pb =
        new ProcessBuilder(
                ROOT.resolve("bin/lora-pipeline").toString(),
                "train",
                "--config",
                localConfig.toString(),
                "--output",
                out.toString(),
                "--run-id",
                runId)
            .directory(ROOT.toFile());
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    pb.environment()
        .put(
            "LORA_SPARK_JAVA_OPTS",
            "-Xmx1g -Dorg.bytedeco.javacpp.maxbytes=1g"
                + " -Dorg.bytedeco.javacpp.maxphysicalbytes=2500m "
                + javaOpts);
    pb.redirectOutput(out.resolveSibling(runId + ".out").toFile());
    pb.redirectError(out.resolveSibling(runId + ".err").toFile());
    return new Driver(pb.start(), out, runId, System.nanoTime());
  }

  static Run finish(Driver d) throws Exception {
    return SweepClusterIT.finish(d);
  }

  static String seconds(Run r) {
    return String.format(Locale.ROOT, "%.1fs", r.seconds());
  }
}
