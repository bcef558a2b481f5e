package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
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
 * A sweep on a real Spark standalone cluster on 127.0.0.1 (a Master and two 1-core Workers started
 * from a minimal {@code SPARK_HOME} of the packaged Spark jars, as RECIPES.md describes): once
 * undisturbed, submitted with {@code spark-submit} and the packaged application jar, and once from
 * {@code bin/lora-pipeline} with one executor JVM killed with SIGKILL while it trains an adapter
 * that already has a checkpoint: Spark retries the lost task, it resumes from the checkpoint, and
 * the run ends with every adapter exactly once and the same leaderboard and per-step losses as the
 * undisturbed run.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SweepClusterIT {
  static final Path ROOT = LauncherIT.ROOT;
  static final Path TARGET = ROOT.resolve("pipeline/target");

  /** Java 17 flags Spark needs (RECIPES.md), for the Master, Workers and executors. */
  static final List<String> JVM_FLAGS =
      List.of(
          "--add-opens=java.base/java.lang=ALL-UNNAMED",
          "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
          "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
          "--add-opens=java.base/java.io=ALL-UNNAMED",
          "--add-opens=java.base/java.net=ALL-UNNAMED",
          "--add-opens=java.base/java.nio=ALL-UNNAMED",
          "--add-opens=java.base/java.util=ALL-UNNAMED",
          "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
          "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
          "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
          "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
          "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
          "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
          "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
          "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
          "-Djdk.reflect.useDirectMethodHandle=false",
          "-Dio.netty.tryReflectionSetAccessible=true");

  /** The sweep, without a master: spark-submit names it. */
  static final String SWEEP =
      """
      model: '%s'
      data: '%s'
      adapters_per_task: 1
      checkpoint_every: 2
      defaults:
        lr: 2.0e-3
        steps: 16
        batch_size: 4
        targets: [q, v, o, down]
      grid:
        rank: [2, 4]
        lr_ratio: [1, 8]
      pruning:
        strategy: none
      """;

  /**
   * What {@code bin/lora-pipeline} adds to {@link #SWEEP} to drive the cluster itself: the master
   * and the settings spark-submit would pass, incl. the executors' classpath (the app is not
   * shipped as a jar then).
   */
  static final String PLAIN_DRIVER =
      """
      master: 'spark://127.0.0.1:%d'
      spark:
        spark.driver.host: 127.0.0.1
        spark.executor.memory: 1g
        spark.executorEnv.SPARK_SCALA_VERSION: '2.13'
        spark.executorEnv.OMP_NUM_THREADS: '1'
        spark.executor.extraClassPath: '%s'
        spark.executor.extraJavaOptions: '%s'
        spark.task.maxFailures: '4'
      """;

  /**
   * Spark runtime dependencies that Maven resolves at the application's compile scope, so {@code
   * pipeline/target/lib} (Spark's provided closure) lacks them and the shaded jar carries them; a
   * Spark distribution's {@code jars/} has them. One class of each, to find its jar.
   */
  static final List<String> SPARK_DEPS_IN_APP =
      List.of(
          "org.slf4j.Logger",
          "com.fasterxml.jackson.annotation.JsonProperty",
          "com.fasterxml.jackson.core.JsonFactory",
          "com.fasterxml.jackson.databind.ObjectMapper",
          "com.google.gson.Gson",
          "com.google.errorprone.annotations.CanIgnoreReturnValue",
          "com.google.common.util.concurrent.internal.InternalFutureFailureAccess",
          "com.google.common.collect.ImmutableList",
          "com.google.j2objc.annotations.J2ObjCIncompatible",
          "org.apache.commons.codec.binary.Hex",
          "org.apache.commons.compress.archivers.ArchiveEntry",
          "org.apache.commons.lang3.StringUtils",
          "org.checkerframework.checker.nullness.qual.Nullable",
          "javassist.ClassPool");

  static final List<String> ADAPTERS =
      List.of("a000-r2-x1", "a001-r2-x8", "a002-r4-x1", "a003-r4-x8");

  @TempDir static Path tmp;

  static final List<Process> cluster = new ArrayList<>();
  static Path sparkHome;
  static final List<Path> workDirs = new ArrayList<>();

  /** The sweep for {@code bin/lora-pipeline} (names the master) and for spark-submit (does not). */
  static Path config;

  static Path submitConfig;
  static Path appJar;
  static int masterPort;
  static String executorOpts;

  /** The undisturbed run (test A), which the killed run is compared with. */
  static Run undisturbed;

  record Run(Path dir, int code, String out, String err, double seconds) {}

  /**
   * Starts the Master and two Workers under {@link #tmp} and writes this class's sweeps; {@link
   * FaultMatrixIT} reuses it (setting {@code tmp} first), so the helpers below serve both.
   */
  @BeforeAll
  static void startCluster() throws Exception {
    workDirs.clear();
    Thread hook = new Thread(SweepClusterIT::stopCluster, "stop-spark-cluster");
    Runtime.getRuntime().addShutdownHook(hook);
    Path jar;
    try (Stream<Path> s = Files.list(TARGET)) {
      jar =
          s.filter(p -> p.getFileName().toString().matches("lora-spark-pipeline-.*-spark\\.jar"))
              .findFirst()
              .orElseThrow(() -> new AssertionError("no shaded jar in " + TARGET + "; package"))
              .toAbsolutePath();
    }
    appJar = jar;
    Path lib = TARGET.resolve("lib").toAbsolutePath();
    // lib/ holds the provided jars (Spark, Hadoop); slf4j-api and the app are in the shaded jar
    String classpath = jar + ":" + lib + "/*";

    // a minimal Spark distribution: jars/ holds Spark's runtime (lib/ plus the Spark dependencies
    // the app also uses), and the Master, Workers, executors and spark-submit run from it alone
    sparkHome = Files.createDirectories(tmp.resolve("spark-home"));
    Path jars = Files.createDirectories(sparkHome.resolve("jars"));
    Files.createDirectories(sparkHome.resolve("conf"));
    try (Stream<Path> s = Files.list(lib)) {
      for (Path j : s.filter(p -> p.toString().endsWith(".jar")).toList()) {
        Files.createSymbolicLink(jars.resolve(j.getFileName()), j);
      }
    }
    for (String cls : SPARK_DEPS_IN_APP) {
      Path j =
          Path.of(Class.forName(cls).getProtectionDomain().getCodeSource().getLocation().toURI());
      assertThat(j.getFileName().toString())
          .as("the jar of %s", cls)
          .endsWith(".jar")
          .doesNotStartWith("lora-spark");
      Path link = jars.resolve(j.getFileName());
      if (!Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
        Files.createSymbolicLink(link, j);
      }
    }
    String sparkClasspath = jars + "/*";

    int port = freePort();
    masterPort = port;
    spark(
        sparkClasspath,
        tmp.resolve("master.log"),
        List.of("-Dspark.master.rest.enabled=false"),
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        String.valueOf(port),
        "--webui-port",
        "0");
    List<Path> workerLogs = new ArrayList<>();
    for (int i = 1; i <= 2; i++) {
      Path work = Files.createDirectories(tmp.resolve("worker-" + i));
      workDirs.add(work);
      Path log = tmp.resolve("worker-" + i + ".log");
      workerLogs.add(log);
      spark(
          sparkClasspath,
          log,
          List.of(),
          "org.apache.spark.deploy.worker.Worker",
          "--host",
          "127.0.0.1",
          "--cores",
          "1",
          "--memory",
          "2g",
          "--work-dir",
          work.toString(),
          "--webui-port",
          "0",
          "spark://127.0.0.1:" + port);
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (!workerLogs.stream().allMatch(l -> read(l).contains("Successfully registered"))) {
      for (Process p : cluster) {
        if (!p.isAlive()) {
          fail("a cluster JVM exited (%d) while starting:%n%s", p.exitValue(), clusterLogs());
        }
      }
      if (System.nanoTime() > deadline) {
        fail("both workers did not register with the master within 120 s:%n%s", clusterLogs());
      }
      Thread.sleep(200);
    }

    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 160);
    executorOpts =
        String.join(" ", JVM_FLAGS)
            + " -XX:GCTimeRatio=4" // as conf/spark-defaults.conf gives executors
            + " -Dorg.bytedeco.javacpp.maxbytes=1500m"
            + " -Dorg.bytedeco.javacpp.maxphysicalbytes=1800m";
    String sweep =
        SWEEP.formatted(ROOT.resolve("models/stories260K").toAbsolutePath(), data.toAbsolutePath());
    submitConfig = tmp.resolve("sweep-submit.yaml");
    Files.writeString(submitConfig, sweep);
    config = tmp.resolve("sweep.yaml");
    Files.writeString(config, sweep + PLAIN_DRIVER.formatted(port, classpath, executorOpts));
  }

  @AfterAll
  static void stopCluster() {
    List<ProcessHandle> all = new ArrayList<>();
    synchronized (cluster) {
      for (Process p : cluster) {
        p.descendants().forEach(all::add); // executor JVMs first, so none is orphaned
      }
      // executors whose worker is already gone: ours name this test's SPARK_HOME in -cp
      if (sparkHome != null) {
        String home = sparkHome.toString();
        ProcessHandle.allProcesses()
            .filter(h -> commandLine(h).contains(home) && !all.contains(h))
            .forEach(all::add);
      }
      cluster.forEach(p -> all.add(p.toHandle()));
      cluster.clear();
    }
    all.forEach(ProcessHandle::destroyForcibly);
    for (ProcessHandle h : all) {
      try {
        h.onExit().get(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        System.err.println("process " + h.pid() + " did not exit: " + e);
      }
    }
  }

  @Test
  @Order(1)
  void sparkSubmittedSweepRanksFourLoadableAdaptersBetterThanTheBase() throws Exception {
    Run a = undisturbed();
    assertThat(a.code()).as("exit code; spark-submit stderr:%n%s", a.err()).isZero();
    JsonNode summary = new ObjectMapper().readTree(a.out());
    assertThat(summary.get("ok").asInt()).as("summary %s", a.out()).isEqualTo(4);
    List<List<String>> board = leaderboard(a.dir());
    assertThat(board).extracting(r -> r.get(1)).containsExactlyInAnyOrderElementsOf(ADAPTERS);
    assertThat(board).extracting(r -> r.get(6)).containsOnly("ok");
    assertThat(board).extracting(r -> r.get(0)).containsExactly("1", "2", "3", "4");
    assertThat(board).extracting(r -> r.get(10)).as("steps").containsOnly("16");

    // ranked by eval loss (full precision in the round's outcomes, rounded in the CSV)
    Map<String, JsonNode> outcomes = outcomes(a.dir());
    List<Double> eval =
        board.stream()
            .map(r -> outcomes.get(r.get(1)))
            .map(o -> o.get("evalLoss").asDouble())
            .toList();
    assertThat(eval).as("eval losses down the leaderboard %s", board).isSorted();
    assertThat(board.stream().map(r -> Double.parseDouble(r.get(5))).toList()).isSorted();
    // the best adapter beats the base model on the eval rows
    double base = Double.parseDouble(board.get(0).get(12));
    assertThat(board).extracting(r -> r.get(12)).containsOnly(board.get(0).get(12));
    assertThat(eval.get(0)).as("best eval loss vs the base model's %s", base).isLessThan(base);
    assertThat(summary.get("best_adapter").asText()).isEqualTo(board.get(0).get(1));

    // every adapter is a loadable PEFT directory on the base model
    ModelConfig model = ModelConfig.load(ROOT.resolve("models/stories260K"));
    for (String id : ADAPTERS) {
      LoraWeights w =
          PeftAdapter.load(a.dir().resolve("adapters").resolve(id), model, DataType.FLOAT);
      assertThat(w.config().targets()).as("targets of %s", id).hasSize(4);
      assertThat(w.config().rank()).as("rank of %s", id).isEqualTo(id.contains("-r2-") ? 2 : 4);
    }
    PeftAdapter.load(a.dir().resolve("best"), model, DataType.FLOAT);

    JsonNode run = new ObjectMapper().readTree(a.dir().resolve("run.json").toFile());
    assertThat(run.get("spark_master").asText()).isEqualTo("spark://127.0.0.1:" + masterPort);
    // the executors ran the app from the submitted jar (fetched from the driver), not a classpath
    assertThat(executorLogs())
        .contains("run cluster-undisturbed round 0 group", appJar.getFileName().toString());
    System.err.printf("SweepClusterIT: spark-submit sweep %.1fs%n", a.seconds());
  }

  @Test
  @Order(2)
  void sweepSurvivesAKilledExecutorWithTheSameLeaderboard() throws Exception {
    Run a = undisturbed();
    assertThat(a.code()).as("undisturbed run; driver stderr:%n%s", a.err()).isZero();

    Path out = tmp.resolve("killed");
    Driver driver = startSweep(out, "cluster-killed");
    Killed killed;
    try {
      killed = killExecutorTrainingACheckpointedAdapter(driver);
    } catch (Throwable t) {
      destroyTree(driver.process().toHandle());
      throw t;
    }
    Run b = finish(driver);
    assertThat(b.code())
        .as("exit code after killing executor %s; driver stderr:%n%s", killed, b.err())
        .isZero();

    // every adapter exactly once, all ok, same ranking and losses as the undisturbed run
    List<List<String>> board = leaderboard(b.dir());
    assertThat(board).extracting(r -> r.get(1)).containsExactlyInAnyOrderElementsOf(ADAPTERS);
    assertThat(board).extracting(r -> r.get(6)).containsOnly("ok");
    // rank, adapter_id, method, lora_rank, lr_ratio, eval_loss, status, ..., steps, train_loss
    int[] cols = {0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13};
    assertThat(project(board, cols))
        .as("leaderboard vs the undisturbed run's; driver stderr:%n%s", b.err())
        .isEqualTo(project(leaderboard(a.dir()), cols));
    // full precision: the round's recorded outcomes
    Map<String, JsonNode> ra = outcomes(a.dir());
    Map<String, JsonNode> rb = outcomes(b.dir());
    for (String id : ADAPTERS) {
      for (String f : List.of("evalLoss", "trainLoss", "steps")) {
        assertThat(rb.get(id).get(f).asText())
            .as("%s of %s", f, id)
            .isEqualTo(ra.get(id).get(f).asText());
      }
    }
    // per-step metrics (all but tokens_per_s) survive the retry unchanged
    assertThat(project(csv(b.dir().resolve("metrics.csv")), new int[] {0, 1, 2, 3, 4, 5, 6}))
        .isEqualTo(project(csv(a.dir().resolve("metrics.csv")), new int[] {0, 1, 2, 3, 4, 5, 6}));

    // the killed task was retried and resumed from its checkpoint
    assertThat(rb.get(killed.adapterId()).get("attempt").asInt())
        .as("attempt of %s, whose executor was killed", killed.adapterId())
        .isGreaterThanOrEqualTo(1);
    assertThat(b.err()).containsAnyOf("Lost executor", "Lost task");
    String retry =
        "run cluster-killed round 0 group "
            + killed.group()
            + " attempt [1-9]\\d*: 1 adapters \\(1 resumed\\)";
    assertThat(executorLogs())
        .as("an executor log line matching '%s'", retry)
        .containsPattern(retry);

    // no partial or temporary adapter directories
    try (Stream<Path> s = Files.walk(b.dir().resolve("adapters"))) {
      assertThat(s.map(p -> p.getFileName().toString()))
          .noneMatch(n -> n.startsWith(".") && n.endsWith(".tmp"));
    }
    try (Stream<Path> s = Files.list(b.dir().resolve("adapters"))) {
      assertThat(s.map(p -> p.getFileName().toString()))
          .containsExactlyInAnyOrderElementsOf(ADAPTERS);
    }
    System.err.printf(
        "SweepClusterIT: undisturbed %.1fs, killed executor %s: %.1fs%n",
        a.seconds(), killed, b.seconds());
  }

  /**
   * The two-stage sweep of {@link StagedSweepCliTest} submitted to the cluster with {@code run}:
   * both stages preprocess on the executors and stage 2 trains under stage 1's winner there.
   */
  @Test
  @Order(4)
  void aTwoStageSweepGrowsItsTreeOnTheCluster() throws Exception {
    Path yaml = Files.writeString(tmp.resolve("tree.yaml"), StagedSweepCliTest.twoStages(""));
    Run t = finish(submit("run", tmp.resolve("tree"), "cluster-tree", yaml, List.of()), 300);
    assertThat(t.code()).as("exit code; spark-submit stderr:%n%s", t.err()).isZero();
    JsonNode summary = new ObjectMapper().readTree(t.out());
    assertThat(summary.get("ok").asInt()).as("summary %s", t.out()).isEqualTo(4);
    StagedSweepCliTest.verifyTree(t.dir(), summary.get("best_adapter").asText());
    JsonNode run = new ObjectMapper().readTree(t.dir().resolve("run.json").toFile());
    assertThat(run.get("spark_master").asText()).isEqualTo("spark://127.0.0.1:" + masterPort);
    assertThat(executorLogs()).contains("run cluster-tree round 0 group");
    System.err.printf("SweepClusterIT: two-stage sweep %.1fs%n", t.seconds());
  }

  /** What was killed: the executor process and the adapter (and its group) it was training. */
  record Killed(long pid, String executorId, String adapterId, int group) {}

  /**
   * 64 adapters (4 ranks x 4 LoRA+ ratios x 4 seeds), 8 fused per task, enough steps that training
   * (not the application's start) dominates the wall time.
   */
  static final String LOAD_SWEEP =
      """
      model: '%s'
      data: '%s'
      adapters_per_task: 8
      checkpoint_every: 0
      defaults:
        lr: 2.0e-3
        steps: 12
        batch_size: 2
        targets: [q, v]
      grid:
        rank: [1, 2, 4, 8]
        lr_ratio: [1, 2, 4, 8]
        seed: [1, 2, 3, 4]
      pruning: none
      """;

  /**
   * Load: 64 adapters in 8 tasks of 8 on both workers, then the same sweep held to one core ({@code
   * spark.cores.max=1}). Both finish every adapter once with the same leaderboard, the two-worker
   * run used both workers' executors, and the wall times are printed (measured, not asserted: the
   * machine is shared).
   */
  @Test
  @Order(3)
  void sixtyFourAdaptersKeepBothWorkersBusy() throws Exception {
    Path data = tmp.resolve("train.jsonl");
    Path load = tmp.resolve("load.yaml");
    Files.writeString(
        load,
        LOAD_SWEEP.formatted(
            ROOT.resolve("models/stories260K").toAbsolutePath(), data.toAbsolutePath()));
    Run two = finish(submitSweep(tmp.resolve("load-2"), "load-2", load, List.of()), 900);
    assertThat(two.code()).as("2 workers; driver stderr:%n%s", tail(two.err(), 40)).isZero();
    long workersUsed =
        workDirs.stream().filter(w -> logsOf(w).contains("run load-2 round 0 group")).count();
    Run one =
        finish(
            submitSweep(tmp.resolve("load-1"), "load-1", load, List.of("spark.cores.max=1")), 900);
    assertThat(one.code()).as("1 core; driver stderr:%n%s", tail(one.err(), 40)).isZero();

    List<List<String>> board2 = leaderboard(two.dir());
    List<List<String>> board1 = leaderboard(one.dir());
    assertThat(board2).hasSize(64);
    assertThat(board2).extracting(r -> r.get(6)).containsOnly("ok");
    assertThat(board2.stream().map(r -> r.get(1)).distinct().count()).isEqualTo(64);
    // the same adapters, trained the same way, whatever the cluster: the same ranking and losses
    int[] idAndLoss = {1, 5};
    assertThat(project(board1, idAndLoss)).isEqualTo(project(board2, idAndLoss));
    assertThat(workersUsed)
        .as("workers whose executor trained groups:%n%s", tail(executorLogs(), 40))
        .isEqualTo(2);
    System.err.printf(
        java.util.Locale.ROOT,
        "SweepClusterIT load: 64 adapters, 8 per task: 2 workers %.1fs, 1 core %.1fs (%.2fx)%n",
        two.seconds(),
        one.seconds(),
        one.seconds() / two.seconds());
  }

  /** Every executor's stderr under one worker's work dir, each headed by its path. */
  static String logsOf(Path work) {
    try (Stream<Path> s = Files.walk(work)) {
      StringBuilder b = new StringBuilder();
      for (Path p : s.filter(p -> p.getFileName().toString().equals("stderr")).toList()) {
        b.append("== ").append(p).append('\n').append(read(p)).append('\n');
      }
      return b.toString();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static final Pattern STEP = Pattern.compile("step-(\\d+)");

  /**
   * Waits until an adapter has a checkpoint at step 2 or later while it is still training, finds
   * the executor whose log says it runs that adapter's group, and SIGKILLs it.
   */
  static Killed killExecutorTrainingACheckpointedAdapter(Driver driver) throws Exception {
    Path out = driver.dir();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(150);
    while (true) {
      if (!driver.process().isAlive()) {
        fail(
            "the sweep ended (exit %d) before an executor training a checkpointed adapter could be"
                + " killed; driver stderr:%n%s",
            driver.process().exitValue(), read(driver.err()));
      }
      if (System.nanoTime() > deadline) {
        fail("no checkpointed adapter was seen training within 150 s:%n%s", executorLogs());
      }
      for (String id : checkpointedAdapters(out)) {
        if (Files.exists(out.resolve("adapters").resolve(id))) {
          continue; // already finished
        }
        int group = Integer.parseInt(id.substring(1, 4)); // one adapter per task, in plan order
        String line = "run " + driver.runId() + " round 0 group " + group + " attempt 0:";
        for (ProcessHandle h : executors()) {
          List<String> args = arguments(h);
          String app = after(args, "--app-id");
          String exec = after(args, "--executor-id");
          for (Path work : workDirs) {
            Path log = work.resolve(app).resolve(exec).resolve("stderr");
            if (app != null && exec != null && read(log).contains(line) && h.isAlive()) {
              h.destroyForcibly(); // SIGKILL
              h.onExit().get(30, TimeUnit.SECONDS);
              return new Killed(h.pid(), exec, id, group);
            }
          }
        }
      }
      Thread.sleep(20);
    }
  }

  /** Adapters with a checkpoint at step 2 or later under {@code out/checkpoints}. */
  static List<String> checkpointedAdapters(Path out) throws IOException {
    Path root = out.resolve("checkpoints");
    List<String> ids = new ArrayList<>();
    if (!Files.isDirectory(root)) {
      return ids;
    }
    try (Stream<Path> adapters = Files.list(root)) {
      for (Path a : adapters.toList()) {
        try (Stream<Path> steps = Files.list(a)) {
          boolean any =
              steps
                  .map(p -> STEP.matcher(p.getFileName().toString()))
                  .anyMatch(m -> m.matches() && Integer.parseInt(m.group(1)) >= 2);
          if (any) {
            ids.add(a.getFileName().toString());
          }
        } catch (IOException e) {
          // the directory changed under us; look again next time
        }
      }
    }
    return ids;
  }

  /** This cluster's live executor JVMs. */
  static List<ProcessHandle> executors() {
    String home = sparkHome.toString();
    return ProcessHandle.allProcesses()
        .filter(
            h -> {
              String c = commandLine(h);
              return c.contains("CoarseGrainedExecutorBackend") && c.contains(home);
            })
        .toList();
  }

  static String after(List<String> args, String flag) {
    int i = args.indexOf(flag);
    return i >= 0 && i + 1 < args.size() ? args.get(i + 1) : null;
  }

  /** A process's argv: /proc/PID/cmdline (complete on Linux), else ProcessHandle.Info. */
  static List<String> arguments(ProcessHandle h) {
    try {
      byte[] raw = Files.readAllBytes(Path.of("/proc", String.valueOf(h.pid()), "cmdline"));
      return Arrays.asList(new String(raw, StandardCharsets.UTF_8).split("\0"));
    } catch (IOException | RuntimeException e) {
      ProcessHandle.Info info = h.info();
      List<String> out = new ArrayList<>();
      info.command().ifPresent(out::add);
      info.arguments().map(Arrays::asList).ifPresent(out::addAll);
      return out;
    }
  }

  static String commandLine(ProcessHandle h) {
    return String.join(" ", arguments(h));
  }

  static synchronized Run undisturbed() throws Exception {
    if (undisturbed == null) {
      Path out = tmp.resolve("undisturbed");
      undisturbed = finish(submitSweep(out, "cluster-undisturbed"));
    }
    return undisturbed;
  }

  /** A running sweep driver ({@code bin/lora-pipeline train --config}). */
  record Driver(Process process, Path dir, String runId, long started) {
    Path err() {
      return dir.resolveSibling(runId + ".err");
    }
  }

  static Driver startSweep(Path out, String runId) throws IOException {
    List<String> cmd =
        List.of(
            ROOT.resolve("bin/lora-pipeline").toString(),
            "train",
            "--config",
            config.toString(),
            "--output",
            out.toString(),
            "--run-id",
            runId);
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(ROOT.toFile());
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    pb.redirectOutput(out.resolveSibling(runId + ".out").toFile());
    pb.redirectError(out.resolveSibling(runId + ".err").toFile());
    long started = System.nanoTime();
    return new Driver(pb.start(), out, runId, started);
  }

  /**
   * Submits the sweep with {@code spark-submit} (client mode) and the packaged jar, as on a real
   * cluster: {@code org.apache.spark.deploy.SparkSubmit} on this cluster's {@code SPARK_HOME/jars},
   * the driver JVM flags {@code bin/lora-pipeline} uses, and the app's settings as {@code --conf}.
   */
  static Driver submitSweep(Path out, String runId) throws IOException {
    return submitSweep(out, runId, submitConfig, List.of());
  }

  /** {@link #submitSweep(Path, String)} with another config and extra {@code --conf} settings. */
  static Driver submitSweep(Path out, String runId, Path sweepConfig, List<String> extraConf)
      throws IOException {
    return submit("train", out, runId, sweepConfig, extraConf);
  }

  /** Submits {@code command} ({@code train} or {@code run}) with {@code --config sweepConfig}. */
  static Driver submit(
      String command, Path out, String runId, Path sweepConfig, List<String> extraConf)
      throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(JVM_FLAGS);
    cmd.addAll(
        List.of(
            "-Xmx1g",
            "-Dorg.bytedeco.javacpp.maxbytes=1g",
            "-Dorg.bytedeco.javacpp.maxphysicalbytes=2500m",
            "-Dlog4j2.configurationFile=" + ROOT.resolve("conf/log4j2.properties"),
            "-cp",
            sparkHome.resolve("jars") + "/*",
            "org.apache.spark.deploy.SparkSubmit",
            "--master",
            "spark://127.0.0.1:" + masterPort,
            "--deploy-mode",
            "client"));
    for (String conf :
        List.of(
            "spark.driver.host=127.0.0.1",
            "spark.ui.enabled=false",
            "spark.executor.memory=1g",
            "spark.executorEnv.SPARK_SCALA_VERSION=2.13",
            "spark.executorEnv.OMP_NUM_THREADS=1",
            "spark.executor.extraJavaOptions=" + executorOpts,
            "spark.task.maxFailures=4")) {
      cmd.add("--conf");
      cmd.add(conf);
    }
    for (String conf : extraConf) {
      cmd.add("--conf");
      cmd.add(conf);
    }
    cmd.addAll(
        List.of(
            "--class",
            "io.loraspark.pipeline.cli.Main",
            appJar.toString(),
            command,
            "--config",
            sweepConfig.toString(),
            "--output",
            out.toString(),
            "--run-id",
            runId));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(ROOT.toFile());
    Map<String, String> env = pb.environment();
    env.put("SPARK_HOME", sparkHome.toString());
    env.put("SPARK_SCALA_VERSION", "2.13");
    env.put("SPARK_LOCAL_IP", "127.0.0.1");
    pb.redirectOutput(out.resolveSibling(runId + ".out").toFile());
    pb.redirectError(out.resolveSibling(runId + ".err").toFile());
    long started = System.nanoTime();
    return new Driver(pb.start(), out, runId, started);
  }

  /** Waits for a sweep's driver and collects its outputs. */
  static Run finish(Driver d) throws Exception {
    return finish(d, 180);
  }

  static Run finish(Driver d, int seconds) throws Exception {
    boolean done = d.process().waitFor(seconds, TimeUnit.SECONDS);
    String err = read(d.err());
    if (!done) {
      destroyTree(d.process().toHandle());
      fail("the sweep did not finish within %d s; driver stderr:%n%s", seconds, err);
    }
    return new Run(
        d.dir(),
        d.process().exitValue(),
        read(d.dir().resolveSibling(d.runId() + ".out")),
        err,
        (System.nanoTime() - d.started()) / 1e9);
  }

  static void destroyTree(ProcessHandle h) {
    h.descendants().forEach(ProcessHandle::destroyForcibly);
    h.destroyForcibly();
  }

  static Process spark(String classpath, Path log, List<String> props, String main, String... args)
      throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(JVM_FLAGS);
    cmd.add("-Xmx512m");
    cmd.addAll(props);
    cmd.add("-cp");
    cmd.add(classpath);
    cmd.add(main);
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(tmp.toFile());
    Map<String, String> env = pb.environment();
    env.put("SPARK_HOME", sparkHome.toString());
    env.put("SPARK_SCALA_VERSION", "2.13");
    env.put("SPARK_LOCAL_IP", "127.0.0.1");
    pb.redirectErrorStream(true).redirectOutput(log.toFile());
    Process p = pb.start();
    synchronized (cluster) {
      cluster.add(p);
    }
    return p;
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    }
  }

  static String read(Path file) {
    try {
      return Files.exists(file) ? Files.readString(file, StandardCharsets.ISO_8859_1) : "";
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static String clusterLogs() throws IOException {
    StringBuilder b = new StringBuilder();
    try (Stream<Path> s = Files.list(tmp)) {
      for (Path p : s.filter(p -> p.toString().endsWith(".log")).sorted().toList()) {
        b.append("== ").append(p.getFileName()).append('\n').append(tail(read(p), 30));
      }
    }
    return b.toString();
  }

  /** Every executor's stderr in the workers' work dirs. */
  static String executorLogs() {
    StringBuilder b = new StringBuilder();
    workDirs.forEach(w -> b.append(logsOf(w)));
    return b.toString();
  }

  static String tail(String text, int lines) {
    List<String> l = text.lines().toList();
    return String.join("\n", l.subList(Math.max(0, l.size() - lines), l.size())) + "\n";
  }

  static List<List<String>> leaderboard(Path run) throws IOException {
    return csv(run.resolve("leaderboard.csv"));
  }

  /** Rows of a CSV without its header, fields split on commas outside quotes. */
  static List<List<String>> csv(Path file) throws IOException {
    List<String> lines = Files.readAllLines(file);
    assertThat(lines).as("%s", file).isNotEmpty();
    return lines.stream()
        .skip(1)
        .map(l -> List.of(l.split(",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", -1)))
        .toList();
  }

  static List<List<String>> project(List<List<String>> rows, int[] cols) {
    return rows.stream().map(r -> Arrays.stream(cols).mapToObj(r::get).toList()).toList();
  }

  /** The outcomes recorded in rounds/round-1.json, by adapter id. */
  static Map<String, JsonNode> outcomes(Path run) throws IOException {
    JsonNode n = new ObjectMapper().readTree(run.resolve("rounds/round-1.json").toFile());
    Map<String, JsonNode> out = new TreeMap<>();
    for (JsonNode o : n.get("outcomes")) {
      assertThat(out.put(o.get("adapterId").asText(), o)).as("duplicate outcome %s", o).isNull();
    }
    return out;
  }
}
