package io.loraspark.pipeline.sweep;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.progress.ProgressBar;
import io.loraspark.pipeline.progress.SparkProgress;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.loop.StepMetrics;
import io.loraspark.train.spark.AdapterOutcome;
import io.loraspark.train.spark.GroupTask;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.LongAccumulator;

/**
 * Runs a sweep on Spark: adapters are grouped {@code adapters_per_task} to a task, tasks run as
 * ordinary independent Spark tasks (so Spark retries a failed one, which resumes from its
 * checkpoints), and with successive halving every round trains the survivors to the next rung and
 * keeps the best 1/eta by eval loss. Writes the run directory's leaderboard, metrics, best adapter
 * and run.json.
 */
public final class SweepRunner {
  /** The final state of one adapter. */
  public record Entry(
      SweepPlan.Planned planned,
      AdapterOutcome outcome,
      AdapterStatus status,
      int round,
      List<AdapterOutcome> replicas) {
    public String id() {
      return planned.spec().id();
    }
  }

  /** One trained adapter of a planned configuration: replica {@code replica} of its replicas. */
  record Unit(SweepPlan.Planned planned, int replica) {
    String id() {
      return planned.replicas() == 1 ? planned.spec().id() : planned.spec().id() + "-rep" + replica;
    }

    io.loraspark.train.loop.AdapterSpec spec() {
      var s = planned.spec();
      return planned.replicas() == 1
          ? s
          : new io.loraspark.train.loop.AdapterSpec(id(), s.lora(), s.train());
    }
  }

  /**
   * One configuration's state after a round: its single adapter's outcome, or for replicas their
   * mean losses (failed if any replica failed) until the final aggregation replaces it.
   */
  static AdapterOutcome combined(SweepPlan.Planned p, List<AdapterOutcome> reps) {
    if (reps.size() == 1) {
      return reps.get(0);
    }
    for (AdapterOutcome r : reps) {
      if (r == null || r.status() != AdapterStatus.OK) {
        String why = r == null ? "a replica did not report" : r.adapterId() + ": " + r.failure();
        AdapterOutcome first =
            reps.stream().filter(java.util.Objects::nonNull).findFirst().orElse(null);
        return new AdapterOutcome(
            p.spec().id(),
            AdapterStatus.FAILED,
            why,
            first == null ? 0 : first.steps(),
            Double.NaN,
            Double.NaN,
            Double.NaN,
            0,
            first == null ? 0 : first.trainableParams(),
            List.of(),
            "",
            0,
            reps.stream()
                .filter(java.util.Objects::nonNull)
                .mapToDouble(AdapterOutcome::wallSeconds)
                .sum());
      }
    }
    double train =
        reps.stream().mapToDouble(AdapterOutcome::trainLoss).average().orElse(Double.NaN);
    double eval = reps.stream().mapToDouble(AdapterOutcome::evalLoss).average().orElse(Double.NaN);
    double tps = reps.stream().mapToDouble(AdapterOutcome::tokensPerSecond).sum();
    AdapterOutcome r0 = reps.get(0);
    return new AdapterOutcome(
        p.spec().id(),
        AdapterStatus.OK,
        "",
        r0.steps(),
        train,
        eval,
        r0.baseEvalLoss(),
        tps,
        r0.trainableParams(),
        List.of(),
        "",
        0,
        reps.stream().mapToDouble(AdapterOutcome::wallSeconds).sum());
  }

  /** Leaderboard columns (DESIGN.md's contract first). */
  public static final StructType LEADERBOARD =
      new StructType()
          .add("rank", DataTypes.IntegerType, false)
          .add("adapter_id", DataTypes.StringType, false)
          .add("method", DataTypes.StringType, false)
          .add("lora_rank", DataTypes.IntegerType, false)
          .add("lr_ratio", DataTypes.DoubleType, false)
          .add("eval_loss", DataTypes.DoubleType, true)
          .add("status", DataTypes.StringType, false)
          .add("lr", DataTypes.DoubleType, false)
          .add("alpha", DataTypes.DoubleType, false)
          .add("targets", DataTypes.StringType, false)
          .add("steps", DataTypes.IntegerType, false)
          .add("train_loss", DataTypes.DoubleType, true)
          .add("base_eval_loss", DataTypes.DoubleType, true)
          .add("trainable_params", DataTypes.LongType, false)
          .add("tokens_per_s", DataTypes.DoubleType, true)
          .add("pruned_at_round", DataTypes.IntegerType, true)
          .add("failure", DataTypes.StringType, true)
          .add("perplexity", DataTypes.DoubleType, true)
          .add("pruned_at_step", DataTypes.IntegerType, true)
          .add("wall_seconds", DataTypes.DoubleType, true);

  /** Metrics columns: one row per (adapter, step). */
  public static final StructType METRICS =
      new StructType()
          .add("adapter_id", DataTypes.StringType, false)
          .add("step", DataTypes.IntegerType, false)
          .add("train_loss", DataTypes.DoubleType, true)
          .add("eval_loss", DataTypes.DoubleType, true)
          .add("lr", DataTypes.DoubleType, false)
          .add("grad_norm", DataTypes.DoubleType, true)
          .add("tokens", DataTypes.LongType, false)
          .add("tokens_per_s", DataTypes.DoubleType, true);

  private SweepRunner() {}

  /**
   * Trains the sweep and writes its outputs under {@code runDir}.
   *
   * @param threadsPerTask BLAS/OpenMP threads per task ({@code spark.task.cpus})
   * @return the leaderboard, best first
   */
  public static List<Entry> run(
      SparkSession spark,
      SweepConfig config,
      Path runDir,
      String runId,
      int threadsPerTask,
      Consumer<String> progress) {
    return run(spark, config, runDir, runId, threadsPerTask, progress, ProgressBar.Factory.NONE);
  }

  /**
   * Trains the sweep, drawing a progress bar per round with {@code bars}.
   *
   * @see #run(SparkSession, SweepConfig, Path, String, int, Consumer)
   */
  public static List<Entry> run(
      SparkSession spark,
      SweepConfig config,
      Path runDir,
      String runId,
      int threadsPerTask,
      Consumer<String> progress,
      ProgressBar.Factory bars) {
    long start = System.nanoTime();
    List<SweepPlan.Planned> plan = SweepPlan.expand(config);
    Path model = Path.of(config.model()).toAbsolutePath().normalize();
    String data = absoluteUri(config.data());
    AtomicFiles.createDirectories(runDir);
    Map<String, Entry> entries = new LinkedHashMap<>();
    for (SweepPlan.Planned p : plan) {
      entries.put(p.spec().id(), new Entry(p, null, AdapterStatus.FAILED, 0, List.of()));
    }
    List<Integer> rungs = rungs(config.pruning(), plan);
    checkMemory(spark, config, plan, model, data, threadsPerTask, progress);
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    List<SweepPlan.Planned> survivors = new ArrayList<>(plan);
    List<Map<String, Object>> rounds = new ArrayList<>();
    Map<String, Double> wall = new HashMap<>();
    for (int round = 0; round < rungs.size() && !survivors.isEmpty(); round++) {
      int rung = rungs.get(round);
      List<Unit> units = new ArrayList<>();
      for (SweepPlan.Planned p : survivors) {
        for (int r = 0; r < p.replicas(); r++) {
          units.add(new Unit(p, r));
        }
      }
      List<GroupTask> tasks = new ArrayList<>();
      for (int i = 0; i < units.size(); i += config.adaptersPerTask()) {
        List<Unit> g = units.subList(i, Math.min(units.size(), i + config.adaptersPerTask()));
        tasks.add(
            new GroupTask(
                runId,
                round,
                tasks.size(),
                model.toString(),
                data,
                runDir.toAbsolutePath().toString(),
                g.stream().map(Unit::spec).toList(),
                g.stream()
                    .map(u -> new GroupTask.Replica(u.replica(), u.planned().replicas()))
                    .toList(),
                rung,
                threadsPerTask,
                config.checkpointEvery(),
                config.baseQuant(),
                config.recomputeActivations()));
      }
      progress.accept(
          String.format(
              Locale.ROOT,
              "sweep round %d/%d: %d adapters in %d tasks to step %d",
              round + 1,
              rungs.size(),
              survivors.size(),
              tasks.size(),
              rung));
      long t0 = System.nanoTime();
      Path roundFile = runDir.resolve("rounds").resolve("round-" + (round + 1) + ".json");
      String key = planKey(tasks);
      List<AdapterOutcome> outcomes = readRound(roundFile, key);
      if (outcomes == null) {
        spark.sparkContext().setJobDescription("lora-spark " + runId + " round " + (round + 1));
        outcomes =
            trainRound(
                jsc,
                tasks,
                bars,
                String.format(Locale.ROOT, "round %d/%d", round + 1, rungs.size()),
                round == 0 ? 0 : rungs.get(round - 1));
        writeRound(roundFile, key, outcomes);
      } else {
        progress.accept("sweep round " + (round + 1) + ": already done, results from " + roundFile);
      }
      Map<String, AdapterOutcome> byUnit = new HashMap<>();
      outcomes.forEach(o -> byUnit.put(o.adapterId(), o));
      for (SweepPlan.Planned p : survivors) {
        List<AdapterOutcome> reps = new ArrayList<>();
        for (int r = 0; r < p.replicas(); r++) {
          reps.add(byUnit.get(new Unit(p, r).id()));
        }
        AdapterOutcome o = combined(p, reps);
        entries.put(p.spec().id(), new Entry(p, o, o.status(), round + 1, reps));
        wall.merge(p.spec().id(), o.wallSeconds(), Double::sum);
      }
      List<SweepPlan.Planned> next = new ArrayList<>();
      boolean last = round == rungs.size() - 1;
      List<Entry> alive =
          survivors.stream()
              .map(p -> entries.get(p.spec().id()))
              .filter(e -> e.status() == AdapterStatus.OK)
              .sorted(order())
              .toList();
      int keep =
          last
              ? alive.size()
              : Math.max(1, (int) Math.ceil(alive.size() / (double) config.pruning().eta()));
      for (int i = 0; i < alive.size(); i++) {
        Entry e = alive.get(i);
        if (i < keep) {
          next.add(e.planned());
        } else {
          entries.put(
              e.id(), new Entry(e.planned(), e.outcome(), AdapterStatus.PRUNED, round + 1, e.replicas()));
        }
      }
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("round", round + 1);
      r.put("rung_steps", rung);
      r.put("adapters", survivors.size());
      r.put("tasks", tasks.size());
      r.put("kept", last ? alive.size() : keep);
      r.put("seconds", (System.nanoTime() - t0) / 1e9);
      rounds.add(r);
      progress.accept(
          String.format(
              Locale.ROOT,
              "sweep round %d done in %.1fs: %d ok, %d kept",
              round + 1,
              (System.nanoTime() - t0) / 1e9,
              alive.size(),
              last ? alive.size() : keep));
      survivors = next;
    }
    GroupTask.removeLeftovers(runDir); // of tasks killed mid-write; none is running now
    aggregateReplicas(entries, model, config.baseQuant(), data, runDir, progress);
    List<Entry> board = new ArrayList<>(entries.values());
    board.sort(
        Comparator.comparing(Entry::status).thenComparing(order()));
    writeOutputs(spark, config, runDir, runId, board, rounds, rungs, wall, start);
    Path html = io.loraspark.pipeline.report.RunReport.write(runDir);
    progress.accept("sweep report: " + html);
    return board;
  }

  /**
   * Runs one round's group tasks as a Spark stage, with a bar fed by the tasks' per-step
   * accumulators: tasks, adapters at the rung, optimizer steps of all adapters, scored tokens/s.
   *
   * @param fromStep the step every adapter of the round starts from (the previous rung)
   */
  private static List<AdapterOutcome> trainRound(
      JavaSparkContext jsc,
      List<GroupTask> tasks,
      ProgressBar.Factory bars,
      String label,
      int fromStep) {
    LongAccumulator steps = jsc.sc().longAccumulator("lora.steps");
    LongAccumulator tokens = jsc.sc().longAccumulator("lora.tokens");
    LongAccumulator adapters = jsc.sc().longAccumulator("lora.adapters");
    long totalSteps = 0;
    int totalAdapters = 0;
    for (GroupTask t : tasks) {
      totalSteps += (long) t.adapters().size() * Math.max(0, t.stopAt() - fromStep);
      totalAdapters += t.adapters().size();
    }
    long stepsTotal = Math.max(1, totalSteps);
    int adaptersTotal = totalAdapters;
    long t0 = System.nanoTime();
    try (SparkProgress live = SparkProgress.track(jsc.sc(), steps, tokens, adapters);
        ProgressBar bar =
            bars.start(
                label,
                () -> {
                  long s = live.value(steps);
                  double secs = Math.max(1e-9, (System.nanoTime() - t0) / 1e9);
                  return new ProgressBar.Status(
                      s / (double) stepsTotal,
                      String.format(
                          Locale.ROOT,
                          "tasks %d/%d · adapters %d/%d · steps %d/%d · %,.0f tok/s",
                          live.tasksDone(),
                          tasks.size(),
                          live.value(adapters),
                          adaptersTotal,
                          s,
                          stepsTotal,
                          live.value(tokens) / secs));
                })) {
      return jsc.parallelize(tasks, tasks.size())
          .flatMap(new RunGroup(steps, tokens, adapters))
          .collect();
    }
  }

  private static final ObjectMapper ROUND_JSON = new ObjectMapper();

  /**
   * Replaces each finished replicated configuration by the exact aggregate of its replicas (ΔW = Σ
   * w_r s B_r A_r, weights by training rows, re-factorised to the configuration's rank) written to
   * {@code adapters/<id>/}, and scores it on the eval rows on the driver.
   */
  private static void aggregateReplicas(
      Map<String, Entry> entries,
      Path model,
      io.loraspark.train.model.quant.BaseQuant baseQuant,
      String data,
      Path runDir,
      Consumer<String> progress) {
    for (Entry e : List.copyOf(entries.values())) {
      SweepPlan.Planned p = e.planned();
      if (p.replicas() == 1 || e.status() != AdapterStatus.OK) {
        continue;
      }
      io.loraspark.train.model.Transformer t =
          io.loraspark.train.spark.BaseModelCache.get(model, baseQuant);
      io.loraspark.train.spark.TrainingData.Split rows =
          io.loraspark.train.spark.TrainingData.get(
              data, io.loraspark.train.data.TokenLimits.of(t.config()));
      List<io.loraspark.train.lora.LoraWeights> reps = new ArrayList<>();
      double[] w = new double[p.replicas()];
      for (int r = 0; r < p.replicas(); r++) {
        reps.add(
            io.loraspark.train.lora.PeftAdapter.load(
                Path.of(e.replicas().get(r).adapterDir()),
                t.config(),
                org.nd4j.linalg.api.buffer.DataType.FLOAT));
        w[r] = new GroupTask.Replica(r, p.replicas()).of(rows.train()).size();
      }
      double total = java.util.Arrays.stream(w).sum();
      for (int r = 0; r < w.length; r++) {
        w[r] /= total;
      }
      io.loraspark.train.lora.LoraWeights agg =
          io.loraspark.train.lora.ReplicaAggregation.aggregate(reps, w, p.spec().lora().rank());
      Path dir = GroupTask.adapterDir(runDir, p.spec().id());
      io.loraspark.train.lora.PeftAdapter.save(dir, agg, model.toString());
      double eval = Double.NaN;
      if (!rows.eval().isEmpty()) {
        io.loraspark.train.model.LossStats st =
            io.loraspark.train.loop.Evaluator.score(
                t,
                io.loraspark.train.lora.FusedLora.inference(agg),
                rows.eval(),
                io.loraspark.train.loop.Evaluator.DEFAULT_BATCH_SIZE,
                0);
        eval = st.totalNll() / st.totalCount();
      }
      AdapterOutcome o = e.outcome();
      progress.accept(
          String.format(
              Locale.ROOT,
              "sweep: %s aggregated from %d replicas: eval %.4f (replica mean %.4f)",
              p.spec().id(),
              p.replicas(),
              eval,
              o.evalLoss()));
      entries.put(
          p.spec().id(),
          new Entry(
              p,
              new AdapterOutcome(
                  o.adapterId(),
                  AdapterStatus.OK,
                  "",
                  o.steps(),
                  o.trainLoss(),
                  eval,
                  o.baseEvalLoss(),
                  o.tokensPerSecond(),
                  agg.parameterCount(),
                  o.metrics(),
                  dir.toString(),
                  0,
                  o.wallSeconds()),
              AdapterStatus.OK,
              e.round(),
              e.replicas()));
    }
  }

  /** What a round's tasks were: the same key means the recorded results answer them. */
  private static String planKey(List<GroupTask> tasks) {
    StringBuilder b = new StringBuilder();
    for (GroupTask t : tasks) {
      b.append(t.modelDir()).append('|').append(t.dataUri()).append('|').append(t.stopAt());
      t.adapters().forEach(a -> b.append('|').append(a));
      b.append('\n');
    }
    try {
      return java.util.HexFormat.of()
          .formatHex(
              java.security.MessageDigest.getInstance("SHA-256")
                  .digest(b.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * The recorded outcomes of a finished round, so a rerun (after a driver crash, or of a finished
   * run) continues at the first unfinished round instead of re-deciding earlier ones; null when
   * absent, unreadable or recorded for a different plan.
   */
  private static List<AdapterOutcome> readRound(Path file, String key) {
    if (!Files.isRegularFile(file)) {
      return null;
    }
    try {
      com.fasterxml.jackson.databind.JsonNode n = ROUND_JSON.readTree(file.toFile());
      if (!key.equals(n.path("plan").asText())) {
        return null;
      }
      return List.of(ROUND_JSON.treeToValue(n.get("outcomes"), AdapterOutcome[].class));
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  private static void writeRound(Path file, String key, List<AdapterOutcome> outcomes) {
    ObjectNode n = ROUND_JSON.createObjectNode();
    n.put("plan", key);
    n.set("outcomes", ROUND_JSON.valueToTree(outcomes));
    AtomicFiles.createDirectories(file.getParent());
    try {
      AtomicFiles.writeString(file, ROUND_JSON.writeValueAsString(n));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Successive-halving rungs: min_steps · eta^i below the longest adapter, then its full length.
   */
  static List<Integer> rungs(SweepConfig.Pruning pruning, List<SweepPlan.Planned> plan) {
    int max = plan.stream().mapToInt(p -> p.spec().train().steps()).max().orElse(1);
    List<Integer> out = new ArrayList<>();
    if (pruning.enabled()) {
      int r =
          pruning.minSteps() > 0
              ? pruning.minSteps()
              : Math.max(1, max / (pruning.eta() * pruning.eta()));
      while (r < max) {
        out.add(r);
        r *= pruning.eta();
      }
    }
    out.add(max);
    return out;
  }

  /**
   * Reads the data once on the driver (a bad input fails here, before any task) and refuses a plan
   * whose base + adapters + activations cannot fit the executor's JavaCPP physical-memory limit.
   */
  private static void checkMemory(
      SparkSession spark,
      SweepConfig config,
      List<SweepPlan.Planned> plan,
      Path model,
      String data,
      int threadsPerTask,
      Consumer<String> progress) {
    io.loraspark.train.spark.TrainingData.Split rows =
        io.loraspark.train.spark.TrainingData.get(
            data,
            io.loraspark.train.data.TokenLimits.of(
                io.loraspark.train.model.ModelConfig.load(model)));
    int maxLen =
        rows.train().stream().mapToInt(io.loraspark.train.model.TokenRow::length).max().orElse(1);
    boolean local = spark.sparkContext().isLocal();
    int cores =
        local
            ? spark.sparkContext().defaultParallelism()
            : Integer.parseInt(spark.conf().get("spark.executor.cores", "1"));
    MemoryPlan mp =
        MemoryPlan.estimate(
            io.loraspark.train.model.ModelConfig.load(model),
            plan.stream().map(SweepPlan.Planned::spec).toList(),
            config.adaptersPerTask(),
            config.baseQuant(),
            config.recomputeActivations(),
            maxLen,
            Math.max(
                1,
                Math.min(
                    cores / Math.max(1, threadsPerTask),
                    (int) Math.ceil(plan.size() / (double) config.adaptersPerTask()))));
    String key = "org.bytedeco.javacpp.maxphysicalbytes";
    java.util.OptionalLong budget =
        MemoryPlan.sizeOption(spark.conf().get("spark.executor.extraJavaOptions", ""), key);
    String source = "spark.executor.extraJavaOptions -D" + key;
    if (budget.isEmpty() && local && System.getProperty(key) != null) {
      budget = MemoryPlan.parseSize(System.getProperty(key));
      source = "this JVM's -D" + key;
    }
    if (budget.isPresent()) {
      mp.check(budget.getAsLong(), source);
    }
    progress.accept(
        String.format(
            Locale.ROOT,
            "sweep plan: %d adapters, %d per task, about %s per executor%s",
            plan.size(),
            config.adaptersPerTask(),
            MemoryPlan.human(mp.totalBytes()),
            budget.isPresent() ? " of " + MemoryPlan.human(budget.getAsLong()) : ""));
  }

  /** Lower eval loss first; ties by fewer trainable parameters, then id. NaN last. */
  static Comparator<Entry> order() {
    return Comparator.comparingDouble(
            (Entry e) -> {
              double v = e.outcome() == null ? Double.NaN : e.outcome().evalLoss();
              return Double.isNaN(v) ? Double.POSITIVE_INFINITY : v;
            })
        .thenComparingLong(
            e -> e.outcome() == null ? Long.MAX_VALUE : e.outcome().trainableParams())
        .thenComparing(Entry::id);
  }

  private static void writeOutputs(
      SparkSession spark,
      SweepConfig config,
      Path runDir,
      String runId,
      List<Entry> board,
      List<Map<String, Object>> rounds,
      List<Integer> rungs,
      Map<String, Double> wall,
      long start) {
    List<Row> rows = new ArrayList<>();
    StringBuilder csv = new StringBuilder(String.join(",", LEADERBOARD.fieldNames())).append('\n');
    List<Row> metricRows = new ArrayList<>();
    StringBuilder metricsCsv =
        new StringBuilder(String.join(",", METRICS.fieldNames())).append('\n');
    for (int i = 0; i < board.size(); i++) {
      Entry e = board.get(i);
      AdapterOutcome o = e.outcome();
      Map<String, Object> s = e.planned().settings();
      Object[] v = {
        i + 1,
        e.id(),
        s.get("method"),
        s.get("lora_rank"),
        s.get("lr_ratio"),
        o == null || Double.isNaN(o.evalLoss()) ? null : o.evalLoss(),
        (o == null ? AdapterStatus.FAILED : e.status()).fileName(),
        s.get("lr"),
        s.get("alpha"),
        s.get("targets"),
        o == null ? 0 : o.steps(),
        o == null || Double.isNaN(o.trainLoss()) ? null : o.trainLoss(),
        o == null || Double.isNaN(o.baseEvalLoss()) ? null : o.baseEvalLoss(),
        o == null ? 0L : o.trainableParams(),
        o == null ? null : o.tokensPerSecond(),
        e.status() == AdapterStatus.PRUNED ? e.round() : null,
        o == null ? "never ran" : (o.failure().isEmpty() ? null : o.failure()),
        o == null || Double.isNaN(o.evalLoss()) ? null : Math.exp(o.evalLoss()),
        e.status() == AdapterStatus.PRUNED ? rungs.get(e.round() - 1) : null,
        wall.getOrDefault(e.id(), 0.0)
      };
      rows.add(RowFactory.create(v));
      csv.append(csvLine(v));
      List<AdapterOutcome> withMetrics =
          e.replicas().size() > 1 ? e.replicas() : o == null ? List.of() : List.of(o);
      for (AdapterOutcome src : withMetrics) {
        if (src == null) {
          continue;
        }
        for (StepMetrics m : src.metrics()) {
          Object[] mv = {
            src.adapterId(),
            m.step(),
            nullIfNaN(m.trainLoss()),
            nullIfNaN(m.evalLoss()),
            m.lr(),
            nullIfNaN(m.gradNorm()),
            m.tokens(),
            nullIfNaN(m.tokensPerSecond())
          };
          metricRows.add(RowFactory.create(mv));
          metricsCsv.append(csvLine(mv));
        }
      }
    }
    AtomicFiles.writeString(runDir.resolve("leaderboard.csv"), csv.toString());
    AtomicFiles.writeString(runDir.resolve("metrics.csv"), metricsCsv.toString());
    writeParquet(spark, rows, LEADERBOARD, runDir.resolve("leaderboard.parquet"));
    writeParquet(spark, metricRows, METRICS, runDir.resolve("metrics"));
    Entry best = board.isEmpty() ? null : board.get(0);
    if (best != null && best.status() == AdapterStatus.OK) {
      copyDir(Path.of(best.outcome().adapterDir()), runDir.resolve("best"));
    }
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode run = json.createObjectNode();
    run.put("run_id", runId);
    run.put("finished", Instant.now().toString());
    run.put("seconds", (System.nanoTime() - start) / 1e9);
    run.put("config_file", String.valueOf(config.source()));
    run.put("model", config.model());
    run.put("data", config.data());
    run.put("adapters_per_task", config.adaptersPerTask());
    run.putPOJO("pruning", config.pruning());
    run.putPOJO("rungs", rungs);
    run.putPOJO("rounds", rounds);
    run.put("spark_version", spark.version());
    run.put("spark_master", spark.sparkContext().master());
    run.put("java_version", System.getProperty("java.version"));
    // null (not "null") when running from classes without a jar manifest
    run.put("lora_spark_version", SweepRunner.class.getPackage().getImplementationVersion());
    ArrayNode adapters = run.putArray("adapters");
    for (Entry e : board) {
      ObjectNode a = adapters.addObject();
      a.put("adapter_id", e.id());
      a.put("status", e.status().fileName());
      a.putPOJO("settings", e.planned().settings());
    }
    try {
      AtomicFiles.writeString(runDir.resolve("run.json"), json.writeValueAsString(run));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Object nullIfNaN(double v) {
    return Double.isNaN(v) ? null : v;
  }

  private static String csvLine(Object[] v) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < v.length; i++) {
      if (i > 0) {
        b.append(',');
      }
      Object x = v[i];
      String s =
          x == null
              ? ""
              : x instanceof Double d ? String.format(Locale.ROOT, "%.6g", d) : x.toString();
      if (s.contains(",") || s.contains("\"") || s.contains("\n")) {
        s = "\"" + s.replace("\"", "\"\"") + "\"";
      }
      b.append(s);
    }
    return b.append('\n').toString();
  }

  private static void writeParquet(
      SparkSession spark, List<Row> rows, StructType schema, Path dir) {
    Dataset<Row> df = spark.createDataFrame(rows, schema);
    df.coalesce(1)
        .write()
        .mode(SaveMode.Overwrite)
        .parquet(dir.toAbsolutePath().toUri().toString());
  }

  static String absoluteUri(String uri) {
    if (uri.matches("^[a-zA-Z][a-zA-Z0-9+.-]+:.*") && !uri.startsWith("file:")) {
      return uri;
    }
    String path = uri.startsWith("file:") ? uri.substring(5) : uri;
    return Path.of(path).toAbsolutePath().normalize().toString();
  }

  private static void copyDir(Path from, Path to) {
    try {
      Path tmp = to.resolveSibling("." + to.getFileName() + ".tmp");
      AtomicFiles.deleteTree(tmp);
      Files.createDirectories(tmp);
      try (Stream<Path> s = Files.list(from)) {
        for (Path f : s.filter(Files::isRegularFile).toList()) {
          AtomicFiles.copy(f, tmp.resolve(f.getFileName()));
        }
      }
      AtomicFiles.deleteTree(to);
      Files.move(tmp, to, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy " + from + " to " + to + ": " + e, e);
    }
  }
}
