package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.progress.ProgressBar;
import io.loraspark.pipeline.progress.SparkProgress;
import io.loraspark.pipeline.spark.Sessions;
import io.loraspark.pipeline.sweep.Stage;
import io.loraspark.pipeline.sweep.StagedSweep;
import io.loraspark.pipeline.sweep.SweepConfig;
import io.loraspark.pipeline.sweep.SweepPlan;
import io.loraspark.pipeline.sweep.SweepRunner;
import io.loraspark.prep.job.PreprocessConfig;
import io.loraspark.prep.job.PreprocessJob;
import io.loraspark.prep.shard.Manifest;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code run}: the whole pipeline in one Spark application — preprocess the config's instruction
 * data into the run directory's shards, train the sweep (with pruning), rank, export {@code best/}.
 * With no {@code --config}, the bundled quickstart ({@code conf/quickstart.yaml}): local Spark, the
 * bundled stories260K model and self-instruct seeds, 2 ranks × 2 lr_ratios.
 */
@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    description = {
      "Runs preprocess → sweep → prune → rank → export as one Spark application and prints one"
          + " JSON summary line. Without --config it runs conf/quickstart.yaml.",
      "Outputs go to --output, else the config's output, else runs/<run-id>/; rerunning the same"
          + " run id continues where it stopped."
    })
final class RunCommand implements Callable<Integer> {
  /** The bundled default run, relative to the project directory. */
  static final String QUICKSTART = "conf/quickstart.yaml";

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--config", description = "run YAML (default: " + QUICKSTART + ")")
  Path config;

  @Option(names = "--output", description = "the run directory (default: runs/<run-id>/)")
  Path output;

  @Option(names = "--run-id", description = "run id (default: the config's run_id[-<run-date>])")
  String runId;

  @Option(
      names = "--run-date",
      description = "logical date YYYY-MM-DD (a scheduler's {{ ds }}): part of the default run id")
  String runDate;

  @Option(
      names = "--print-spark-submit",
      description = "print the equivalent spark-submit command line and exit")
  boolean printSparkSubmit;

  @Option(names = "--quiet", description = "no progress on stderr (for schedulers)")
  boolean quiet;

  @Override
  public Integer call() {
    Path file = config != null ? config : projectHome().resolve(QUICKSTART);
    SweepConfig c = SweepConfig.read(file);
    if (runDate != null) {
      try {
        LocalDate.parse(runDate);
      } catch (DateTimeParseException e) {
        throw new IllegalArgumentException(
            "--run-date must be YYYY-MM-DD but was '" + runDate + "'");
      }
    }
    String id = resolveRunId(c);
    Path runDir =
        output != null ? output : c.output() != null ? Path.of(c.output()) : Path.of("runs", id);
    if (printSparkSubmit) {
      spec.commandLine().getOut().println(String.join(" ", sparkSubmit(file, c, id, runDir)));
      return Main.OK;
    }
    int adapters = precheck(c, runDir); // a bad sweep or input fails before Spark starts
    PrintWriter err = spec.commandLine().getErr();
    SparkSession spark = Sessions.getOrCreate("lora-spark " + id, c.master(), c.spark());
    ObjectNode out = ScoreInput.STRICT.createObjectNode();
    List<SweepRunner.Entry> board;
    try {
      progress(err, "run " + id + ": sweep of " + adapters + " adapters → " + runDir);
      board =
          c.stages().isEmpty()
              ? sweep(spark, c, runDir, id, err, out)
              : stages(spark, c, runDir, id, err, out);
    } finally {
      spark.stop();
    }
    if (!quiet) {
      printLeaderboard(err, board, runDir);
    }
    long ok = SweepCommand.summarize(out, board, id, runDir);
    String serve = // a staged run serves its last stage's adapters (each stage is a run directory)
        serveCommand(
            c.model(),
            c.stages().isEmpty()
                ? runDir
                : stageDir(runDir, c.stages().get(c.stages().size() - 1)));
    out.put("serve_command", serve);
    if (!quiet) {
      progress(err, "serve its adapters: " + serve);
    }
    spec.commandLine().getOut().println(out);
    return ok > 0 ? Main.OK : Main.FAILURE;
  }

  /**
   * Plans the sweep (every stage) and checks its preprocess inputs and paths.
   *
   * @return the number of adapters planned
   */
  private static int precheck(SweepConfig c, Path runDir) {
    int adapters = c.stages().isEmpty() ? SweepPlan.expand(c).size() : StagedSweep.validate(c);
    SweepCommand.checkPaths(c, runDir);
    if (c.preprocess() != null) {
      PreprocessJob.precheck(preprocessConfig(c, runDir));
    }
    for (Stage s : c.stages()) {
      if (s.sweep().preprocess() != null) {
        PreprocessJob.precheck(preprocessConfig(s.sweep(), stageDir(runDir, s)));
      }
    }
    return adapters;
  }

  /** A plain sweep, preprocessing into the run directory first when it has {@code preprocess}. */
  private List<SweepRunner.Entry> sweep(
      SparkSession spark, SweepConfig c, Path runDir, String id, PrintWriter err, ObjectNode out) {
    SweepConfig sweep = c;
    if (c.preprocess() != null) {
      out.set("preprocess", preprocess(spark, c, runDir, id, err).summary());
      sweep = c.withData(runDir.toAbsolutePath().toString());
    }
    return SweepRunner.run(
        spark,
        sweep,
        runDir,
        id,
        Sessions.threadsPerTask(spark),
        line -> progress(err, line),
        ProgressBar.forStderr(err, quiet));
  }

  /** A staged sweep, each stage with {@code preprocess} preprocessing into its directory first. */
  private List<SweepRunner.Entry> stages(
      SparkSession spark, SweepConfig c, Path runDir, String id, PrintWriter err, ObjectNode out) {
    ObjectNode manifests = ScoreInput.STRICT.createObjectNode();
    List<SweepRunner.Entry> board =
        StagedSweep.run(
            spark,
            c,
            runDir,
            id,
            Sessions.threadsPerTask(spark),
            line -> progress(err, line),
            ProgressBar.forStderr(err, quiet),
            (stage, dir) -> {
              SweepConfig sweep = stage.sweep();
              if (sweep.preprocess() == null) {
                return sweep;
              }
              manifests.set(stage.name(), preprocess(spark, sweep, dir, id, err).summary());
              return sweep.withData(dir.toAbsolutePath().toString());
            });
    if (!manifests.isEmpty()) {
      out.set("preprocess", manifests);
    }
    return board;
  }

  /** Preprocesses {@code c}'s {@code preprocess:} input into {@code dir}, with a bar. */
  private Manifest preprocess(
      SparkSession spark, SweepConfig c, Path dir, String id, PrintWriter err) {
    PreprocessConfig prep = preprocessConfig(c, dir);
    progress(err, "run " + id + ": preprocess " + prep.input() + " → " + dir);
    spark.sparkContext().setJobGroup(PREPROCESS_GROUP, "lora-spark preprocess", false);
    try (ProgressBar bar =
        ProgressBar.forStderr(err, quiet)
            .start(
                "preprocess",
                () -> SparkProgress.jobGroupStatus(spark.sparkContext(), PREPROCESS_GROUP))) {
      return new PreprocessJob(prep, line -> progress(err, line)).run(spark);
    } finally {
      spark.sparkContext().clearJobGroup();
    }
  }

  private static Path stageDir(Path runDir, Stage s) {
    return runDir.resolve(StagedSweep.STAGES).resolve(s.name());
  }

  /** The command that serves a finished run's adapters over the OpenAI API. */
  static String serveCommand(String model, Path runDir) {
    return "bin/lora-pipeline serve --model " + model + " --run " + runDir;
  }

  /** The leaderboard as a table a person reads at the end of a run (stderr; stdout stays JSON). */
  static void printLeaderboard(PrintWriter err, List<SweepRunner.Entry> board, Path runDir) {
    boolean tree = board.stream().anyMatch(e -> e.planned().parent() != null);
    err.println();
    err.printf(
        java.util.Locale.ROOT,
        "%4s  %-22s %5s %8s %10s %8s  %s%s%n",
        "rank",
        "adapter",
        "r",
        "lr_ratio",
        "eval_loss",
        "steps",
        "status",
        tree ? "  parent" : "");
    for (int i = 0; i < board.size(); i++) {
      SweepRunner.Entry e = board.get(i);
      SweepPlan.Planned p = e.planned();
      double eval = e.outcome() == null ? Double.NaN : e.outcome().evalLoss();
      err.printf(
          java.util.Locale.ROOT,
          "%4d  %-22s %5s %8s %10s %8d  %s%s%n",
          i + 1,
          e.id(),
          p.spec().lora().rank(),
          p.spec().train().lrRatio(),
          Double.isNaN(eval) ? "-" : String.format(java.util.Locale.ROOT, "%.4f", eval),
          e.outcome() == null ? 0 : e.outcome().steps(),
          tree ? String.format("%-7s", e.status()) : e.status(),
          tree ? "  " + java.util.Objects.toString(p.parent(), "-") : "");
    }
    if (!board.isEmpty() && board.get(0).outcome() != null) {
      err.printf(
          java.util.Locale.ROOT,
          "%s eval_loss %.4f; best adapter in %s; report: %s%n",
          tree ? "its parent chain's" : "base model",
          board.get(0).outcome().baseEvalLoss(),
          runDir.resolve("best"),
          runDir.resolve("report.html"));
    }
  }

  private static final String PREPROCESS_GROUP = "lora-spark-preprocess";

  private void progress(PrintWriter err, String line) {
    if (!quiet) {
      err.println(line);
    }
  }

  private String resolveRunId(SweepConfig c) {
    String id;
    if (runId != null) {
      id = runId;
    } else if (c.runId() != null) {
      id = runDate == null ? c.runId() : c.runId() + "-" + runDate;
    } else {
      id =
          "run-"
              + (runDate != null
                  ? runDate
                  : LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
    }
    // scheduler run ids (Airflow: scheduled__2026-11-22T00:00:00+00:00) become file-name safe
    String safe = id.replaceAll("[^A-Za-z0-9._-]", "_").replaceAll("^[._-]+", "");
    if (safe.isEmpty() || safe.length() > 128) {
      throw new IllegalArgumentException(
          "run id '" + id + "' must have 1-128 letters, digits, '.', '_' or '-'");
    }
    return safe;
  }

  /** The preprocess stage writes its shards, rejected rows and manifest into the run directory. */
  static PreprocessConfig preprocessConfig(SweepConfig c, Path runDir) {
    return c.preprocess().config(c.model(), runDir);
  }

  /** The same run as a spark-submit command line (the contract the Airflow DAG follows). */
  static List<String> sparkSubmit(Path file, SweepConfig c, String id, Path runDir) {
    List<String> cmd = new ArrayList<>();
    cmd.add("spark-submit");
    if (c.master() != null) {
      cmd.add("--master");
      cmd.add(c.master());
    }
    cmd.add("--class");
    cmd.add(Main.class.getName());
    cmd.add("--conf");
    cmd.add("spark.executorEnv.OMP_NUM_THREADS=1");
    for (Map.Entry<String, String> e : c.spark().entrySet()) {
      cmd.add("--conf");
      cmd.add(e.getKey() + "=" + e.getValue());
    }
    cmd.add(applicationJar());
    cmd.add("run");
    cmd.add("--config");
    cmd.add(file.toAbsolutePath().normalize().toString());
    cmd.add("--run-id");
    cmd.add(id);
    cmd.add("--output");
    cmd.add(runDir.toAbsolutePath().normalize().toString());
    return cmd;
  }

  /** The shaded jar this class was loaded from, or where the build puts it. */
  static String applicationJar() {
    try {
      Path p =
          Path.of(RunCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      if (p.toString().endsWith(".jar")) {
        return p.toString();
      }
    } catch (Exception e) {
      // fall through to the build location
    }
    return projectHome()
        .resolve("pipeline/target/lora-spark-pipeline-0.1.0-SNAPSHOT-spark.jar")
        .toString();
  }

  /**
   * The project directory: {@code -Dlora.home} (set by bin/lora-pipeline), else the current one.
   */
  static Path projectHome() {
    String home = System.getProperty("lora.home");
    Path dir = home != null ? Path.of(home) : Path.of("").toAbsolutePath();
    if (home == null
        && !Files.exists(dir.resolve(QUICKSTART))
        && Files.exists(dir.resolve("../" + QUICKSTART))) {
      dir = dir.resolve("..").normalize(); // tests run from pipeline/
    }
    return dir;
  }
}
