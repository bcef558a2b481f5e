package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.progress.ProgressBar;
import io.loraspark.pipeline.spark.Sessions;
import io.loraspark.pipeline.sweep.SweepConfig;
import io.loraspark.pipeline.sweep.SweepRunner;
import io.loraspark.train.loop.AdapterStatus;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;

/** {@code train --config FILE}: a sweep on Spark, ranked, in a run directory. */
final class SweepCommand {
  private SweepCommand() {}

  static int run(
      Path configFile, Path output, String runIdOverride, boolean quiet, CommandLine cli) {
    SweepConfig c = SweepConfig.read(configFile);
    String runId =
        runIdOverride != null
            ? runIdOverride
            : c.runId() != null
                ? c.runId()
                : "run-"
                    + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
    if (!runId.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,127}")) {
      throw new IllegalArgumentException(
          "run id '" + runId + "' must be 1-128 letters, digits, '.', '_' or '-'");
    }
    Path runDir =
        output != null
            ? output
            : c.output() != null ? Path.of(c.output()) : Path.of("runs").resolve(runId);
    if (c.stages().isEmpty()) { // validate before starting Spark
      io.loraspark.pipeline.sweep.SweepPlan.expand(c);
    } else {
      io.loraspark.pipeline.sweep.StagedSweep.validate(c);
    }
    checkPaths(c, runDir);
    PrintWriter err = cli.getErr();
    SparkSession spark = Sessions.getOrCreate("lora-spark " + runId, c.master(), c.spark());
    List<SweepRunner.Entry> board;
    try {
      board =
          SweepRunner.run(
              spark,
              c,
              runDir,
              runId,
              Sessions.threadsPerTask(spark),
              line -> {
                if (!quiet) {
                  err.println(line);
                }
              },
              ProgressBar.forStderr(err, quiet));
    } finally {
      spark.stop();
    }
    ObjectNode out = ScoreInput.STRICT.createObjectNode();
    long ok = summarize(out, board, runId, runDir);
    cli.getOut().println(out);
    return ok > 0 ? Main.OK : Main.FAILURE;
  }

  /**
   * Adds the run summary (counts, best adapter) to {@code out}; returns the number of ok adapters.
   */
  static long summarize(ObjectNode out, List<SweepRunner.Entry> board, String runId, Path runDir) {
    out.put("run_id", runId);
    out.put("run_dir", runDir.toString());
    out.put("adapters", board.size());
    for (AdapterStatus s : AdapterStatus.values()) {
      out.put(s.fileName(), board.stream().filter(e -> e.status() == s).count());
    }
    long ok = out.get(AdapterStatus.OK.fileName()).asLong();
    if (ok > 0) {
      out.put("best_adapter", board.get(0).id());
      out.put("best_eval_loss", board.get(0).outcome().evalLoss());
      out.put("base_eval_loss", board.get(0).outcome().baseEvalLoss());
    }
    return ok;
  }

  /**
   * Refuses, before Spark starts, a model directory without config.json and a run directory that
   * cannot be created or written, naming the config key and the path.
   */
  static void checkPaths(SweepConfig c, Path runDir) {
    Path model = Path.of(c.model());
    if (!java.nio.file.Files.isRegularFile(model.resolve("config.json"))) {
      throw new IllegalArgumentException(
          c.source()
              + ": model "
              + model.toAbsolutePath().normalize()
              + " is not a Hugging Face checkpoint directory (no config.json)");
    }
    Path existing = runDir.toAbsolutePath().normalize();
    while (existing != null && !java.nio.file.Files.exists(existing)) {
      existing = existing.getParent();
    }
    if (existing == null
        || !java.nio.file.Files.isDirectory(existing)
        || !java.nio.file.Files.isWritable(existing)) {
      throw new IllegalArgumentException(
          "output "
              + runDir.toAbsolutePath().normalize()
              + " cannot be created: "
              + (existing == null
                  ? "no existing parent"
                  : existing + " is not a writable directory"));
    }
  }
}
