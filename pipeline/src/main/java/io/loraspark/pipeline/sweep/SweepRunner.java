package io.loraspark.pipeline.sweep;

import io.loraspark.pipeline.progress.ProgressBar;
import io.loraspark.pipeline.progress.SparkProgress;
import io.loraspark.pipeline.report.RunReport;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.loop.AdapterKey;
import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.spark.BaseModelCache;
import io.loraspark.train.spark.GroupTask;
import io.loraspark.train.spark.TrainingData;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.LongAccumulator;

/**
 * Runs a sweep on Spark, in stages: plan ({@link SweepPlan}), check memory ({@link MemoryCheck}),
 * then per rung of {@link SuccessiveHalving} a round (adapters grouped {@code adapters_per_task} to
 * an ordinary independent Spark task, so Spark retries a failed one, which resumes from its
 * checkpoints; recorded in the {@link RoundJournal}) and the cut; then the {@link Replicas}'
 * aggregates, the {@link Leaderboard}, the {@link MetricsTable}, {@code best/}, the {@link
 * RunRecord} and the report.
 */
public final class SweepRunner {
  /**
   * The state of one configuration of the sweep.
   *
   * @param outcome its (combined) outcome, null while it never ran
   * @param round the last round it trained in (1-based; 0 never)
   * @param replicas its replicas' outcomes in the last round (a single adapter: itself)
   * @param wallSeconds wall time of its tasks, summed over rounds
   */
  public record Entry(
      SweepPlan.Planned planned,
      AdapterOutcome outcome,
      AdapterStatus status,
      int round,
      List<AdapterOutcome> replicas,
      double wallSeconds) {
    public String id() {
      return planned.spec().id();
    }

    Entry with(AdapterOutcome o, AdapterStatus s) {
      return new Entry(planned, o, s, round, replicas, wallSeconds);
    }
  }

  /** One trained adapter of a planned configuration: replica {@code replica} of its replicas. */
  record Unit(SweepPlan.Planned planned, int replica) {
    String id() {
      return planned.replicas() == 1 ? planned.spec().id() : planned.spec().id() + "-rep" + replica;
    }

    AdapterSpec spec() {
      var s = planned.spec();
      return planned.replicas() == 1 ? s : s.withId(id());
    }
  }

  private final SparkSession spark;
  private final SweepConfig config;
  private final Path runDir;
  private final String runId;
  private final int threadsPerTask;
  private final Consumer<String> progress;
  private final ProgressBar.Factory bars;
  private final Path model;
  private final String data;
  private final RoundJournal journal;
  private final List<SweepPlan.Planned> plan;
  private final Map<String, Entry> entries = new LinkedHashMap<>();
  private final List<Map<String, Object>> rounds = new ArrayList<>();
  private List<Integer> rungs;

  private SweepRunner(
      SparkSession spark,
      SweepConfig config,
      List<SweepPlan.Planned> plan,
      Path runDir,
      String runId,
      int threadsPerTask,
      Consumer<String> progress,
      ProgressBar.Factory bars) {
    this.spark = spark;
    this.config = config;
    this.plan = plan;
    this.runDir = runDir;
    this.runId = runId;
    this.threadsPerTask = threadsPerTask;
    this.progress = progress;
    this.bars = bars;
    this.model = Path.of(config.model()).toAbsolutePath().normalize();
    this.data = absoluteUri(config.data());
    this.journal = new RoundJournal(runDir);
  }

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
    if (!config.stages().isEmpty()) {
      return StagedSweep.run(
          spark, config, runDir, runId, threadsPerTask, progress, bars, StagedSweep.SHARDS_GIVEN);
    }
    return new SweepRunner(
            spark, config, SweepPlan.expand(config), runDir, runId, threadsPerTask, progress, bars)
        .run()
        .board();
  }

  /** What one sweep (or stage) ends with: its leaderboard, best first, and its rungs. */
  record Result(List<Entry> board, List<Integer> rungs) {}

  /** Trains the planned adapters of one stage of a staged sweep in {@code stageDir}. */
  static Result runStage(
      SparkSession spark,
      SweepConfig stage,
      List<SweepPlan.Planned> plan,
      Path stageDir,
      String runId,
      int threadsPerTask,
      Consumer<String> progress,
      ProgressBar.Factory bars) {
    return new SweepRunner(spark, stage, plan, stageDir, runId, threadsPerTask, progress, bars)
        .run();
  }

  /** The stages, in order. */
  private Result run() {
    long start = System.nanoTime();
    AtomicFiles.createDirectories(runDir);
    for (SweepPlan.Planned p : plan) {
      entries.put(p.spec().id(), new Entry(p, null, AdapterStatus.FAILED, 0, List.of(), 0));
    }
    int maxSteps = plan.stream().mapToInt(p -> p.spec().train().steps()).max().orElse(1);
    rungs = SuccessiveHalving.rungs(config.pruning(), maxSteps);
    TrainingData.Split rows =
        MemoryCheck.beforeTraining(spark, config, plan, model, data, threadsPerTask, progress);
    List<SweepPlan.Planned> survivors = plan;
    for (int round = 0; round < rungs.size() && !survivors.isEmpty(); round++) {
      survivors = runRound(round, survivors);
    }
    GroupTask.removeLeftovers(runDir); // of tasks killed mid-write; none is running now
    for (Entry e : List.copyOf(entries.values())) {
      if (e.planned().replicas() > 1 && e.status() == AdapterStatus.OK) {
        entries.put(
            e.id(), Replicas.aggregate(e, model, config.baseQuant(), data, runDir, progress));
      }
    }
    List<Entry> board = Leaderboard.ranked(entries.values());
    Leaderboard.write(spark, runDir, board, e -> rungs);
    MetricsTable.write(spark, runDir, board);
    if (!board.isEmpty() && board.get(0).status() == AdapterStatus.OK) {
      copyDir(Path.of(board.get(0).outcome().adapterDir()), runDir.resolve("best"));
    }
    RunRecord.Provenance provenance =
        new RunRecord.Provenance(
            BaseModelCache.contentHash(model),
            AdapterKey.dataFingerprint(rows.train(), rows.eval()),
            SweepRunner.class.getPackage().getImplementationVersion());
    double seconds = (System.nanoTime() - start) / 1e9;
    RunRecord.write(
        spark, runDir, new RunRecord.Run(runId, config, board, rounds, rungs, seconds, provenance));
    progress.accept("sweep report: " + RunReport.write(runDir));
    return new Result(board, rungs);
  }

  /**
   * Round {@code round} (0-based): trains {@code survivors} to its rung (or reads the journal's
   * record of it), updates their entries, prunes, and returns the survivors of the cut.
   */
  private List<SweepPlan.Planned> runRound(int round, List<SweepPlan.Planned> survivors) {
    int rung = rungs.get(round);
    List<GroupTask> tasks = tasks(round, survivors, rung);
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
    Map<String, AdapterOutcome> byUnit = new HashMap<>();
    outcomes(round, tasks).forEach(o -> byUnit.put(o.adapterId(), o));
    List<Entry> alive = new ArrayList<>();
    for (SweepPlan.Planned p : survivors) {
      List<AdapterOutcome> reps = new ArrayList<>();
      for (int r = 0; r < p.replicas(); r++) {
        reps.add(byUnit.get(new Unit(p, r).id()));
      }
      AdapterOutcome o = Replicas.combined(p, reps);
      double wall = entries.get(p.spec().id()).wallSeconds() + o.wallSeconds();
      Entry e = new Entry(p, o, o.status(), round + 1, reps, wall);
      entries.put(e.id(), e);
      if (e.status() == AdapterStatus.OK) {
        alive.add(e);
      }
    }
    alive.sort(Leaderboard.byLoss());
    boolean last = round == rungs.size() - 1;
    SuccessiveHalving.Cut<Entry> cut = SuccessiveHalving.cut(alive, config.pruning().eta(), last);
    cut.dropped().forEach(e -> entries.put(e.id(), e.with(e.outcome(), AdapterStatus.PRUNED)));
    double seconds = (System.nanoTime() - t0) / 1e9;
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("round", round + 1);
    r.put("rung_steps", rung);
    r.put("adapters", survivors.size());
    r.put("tasks", tasks.size());
    r.put("kept", cut.kept().size());
    r.put("seconds", seconds);
    rounds.add(r);
    progress.accept(
        String.format(
            Locale.ROOT,
            "sweep round %d done in %.1fs: %d ok, %d kept",
            round + 1,
            seconds,
            alive.size(),
            cut.kept().size()));
    return cut.kept().stream().map(Entry::planned).toList();
  }

  /** The round's units (replicas expanded) grouped {@code adapters_per_task} to a task. */
  private List<GroupTask> tasks(int round, List<SweepPlan.Planned> survivors, int rung) {
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
              config.recomputeActivations(),
              config.precision()));
    }
    return tasks;
  }

  /**
   * The round's outcomes: the journal's record of it when it has one, else trained and recorded.
   */
  private List<AdapterOutcome> outcomes(int round, List<GroupTask> tasks) {
    RoundJournal.Read recorded = journal.read(round + 1, tasks);
    if (recorded.note() != null) {
      progress.accept("sweep: " + recorded.note());
    }
    if (recorded.outcomes() != null) {
      progress.accept(
          "sweep round " + (round + 1) + ": already done, results from " + journal.file(round + 1));
      return recorded.outcomes();
    }
    spark.sparkContext().setJobDescription("lora-spark " + runId + " round " + (round + 1));
    List<AdapterOutcome> out =
        trainRound(
            tasks,
            String.format(Locale.ROOT, "round %d/%d", round + 1, rungs.size()),
            round == 0 ? 0 : rungs.get(round - 1));
    journal.write(round + 1, tasks, out);
    return out;
  }

  /**
   * Runs one round's group tasks as a Spark stage, with a bar fed by the tasks' per-step
   * accumulators: tasks, adapters at the rung, optimizer steps of all adapters, scored tokens/s.
   *
   * @param fromStep the step every adapter of the round starts from (the previous rung)
   */
  private List<AdapterOutcome> trainRound(List<GroupTask> tasks, String label, int fromStep) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
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
    // once the stage has returned, the bar's last line shows the driver's accumulators and every
    // task done: the listener that feeds the live values hears of the last task end later
    AtomicBoolean over = new AtomicBoolean();
    try (SparkProgress live = SparkProgress.track(jsc.sc(), steps, tokens, adapters);
        ProgressBar bar =
            bars.start(
                label,
                () -> {
                  boolean done = over.get();
                  long s = done ? steps.value() : live.value(steps);
                  double secs = Math.max(1e-9, (System.nanoTime() - t0) / 1e9);
                  return new ProgressBar.Status(
                      s / (double) stepsTotal,
                      String.format(
                          Locale.ROOT,
                          "tasks %d/%d · adapters %d/%d · steps %d/%d · %,.0f tok/s",
                          done ? tasks.size() : live.tasksDone(),
                          tasks.size(),
                          done ? adapters.value() : live.value(adapters),
                          adaptersTotal,
                          s,
                          stepsTotal,
                          (done ? tokens.value() : live.value(tokens)) / secs));
                })) {
      List<AdapterOutcome> out =
          jsc.parallelize(tasks, tasks.size())
              .flatMap(new RunGroup(steps, tokens, adapters))
              .collect();
      over.set(true);
      return out;
    }
  }

  static String absoluteUri(String uri) {
    if (uri.matches("^[a-zA-Z][a-zA-Z0-9+.-]+:.*") && !uri.startsWith("file:")) {
      return uri;
    }
    String path = uri.startsWith("file:") ? uri.substring(5) : uri;
    return Path.of(path).toAbsolutePath().normalize().toString();
  }

  static void copyDir(Path from, Path to) {
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
