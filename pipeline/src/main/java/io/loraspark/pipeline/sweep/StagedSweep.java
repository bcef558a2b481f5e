package io.loraspark.pipeline.sweep;

import io.loraspark.pipeline.progress.ProgressBar;
import io.loraspark.pipeline.report.RunReport;
import io.loraspark.train.loop.AdapterStatus;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.spark.sql.SparkSession;

/**
 * A staged sweep: a tree of adapters grown one stage at a time. Each {@link Stage} is an ordinary
 * sweep ({@link SweepRunner}) in its own directory {@code stages/<name>/} (its shards when it
 * preprocesses, {@code adapters/}, {@code checkpoints/}, {@code rounds/}, leaderboard, {@code
 * best/}, report), whose adapters (from the second stage on) each train on top of one of the
 * previous stage's best finished adapters as their frozen {@code parent}. The run directory itself
 * gets the whole tree: a leaderboard of every node (deepest stage first, each stage ranked as a
 * sweep ranks, with {@code parent} and {@code depth}), {@code metrics}, {@code best/} (the last
 * stage's best), {@code run.json} with the stages, and the report, which draws the tree.
 *
 * <p>A rerun resumes stage by stage: a finished stage's rounds come back from its journal without
 * training, so its best (and the next stage's plan) is the same; an interrupted stage continues
 * from its journal and checkpoints like any sweep.
 */
public final class StagedSweep {
  /** The directory under the run directory that holds one directory per stage. */
  public static final String STAGES = "stages";

  /** Makes a stage's training data ready in its directory and returns the stage's sweep. */
  @FunctionalInterface
  public interface Prepare {
    /**
     * @param stage the stage about to train
     * @param stageDir its directory, {@code stages/<name>/}
     * @return the sweep to run, its {@code data} set
     */
    SweepConfig prepare(Stage stage, Path stageDir);
  }

  /** For {@code train --config}: every stage names its shards with {@code data}. */
  public static final Prepare SHARDS_GIVEN =
      (stage, dir) -> {
        if (stage.sweep().data() == null) {
          throw new IllegalArgumentException(
              stage.sweep().source()
                  + ": stage "
                  + stage.name()
                  + " has no data; train --config needs data per stage (run preprocesses)");
        }
        return stage.sweep();
      };

  private StagedSweep() {}

  /**
   * Plans every stage as far as it can be before training (its parents are stand-ins), so a bad
   * stage fails before Spark starts.
   *
   * @return the number of adapters the staged sweep plans
   * @throws IllegalArgumentException naming the config file, the stage and the setting
   */
  public static int validate(SweepConfig config) {
    int total = 0;
    for (int i = 0; i < config.stages().size(); i++) {
      Stage s = config.stages().get(i);
      List<SweepPlan.Parent> parents = new ArrayList<>();
      for (int k = 0; i > 0 && k < s.topK(); k++) {
        parents.add(new SweepPlan.Parent("parent" + k, null, i - 1));
      }
      total += s.plan(i, parents).size();
    }
    return total;
  }

  /**
   * Trains the stages in order and writes the tree's outputs under {@code runDir}.
   *
   * @param prepare makes each stage's data ready (e.g. preprocesses it into its directory)
   * @return every node, deepest stage first, each stage best first
   */
  public static List<SweepRunner.Entry> run(
      SparkSession spark,
      SweepConfig config,
      Path runDir,
      String runId,
      int threadsPerTask,
      Consumer<String> progress,
      ProgressBar.Factory bars,
      Prepare prepare) {
    long start = System.nanoTime();
    List<Stage> stages = config.stages();
    List<RunRecord.StageRun> done = new ArrayList<>();
    Map<String, List<Integer>> rungsById = new HashMap<>();
    List<SweepPlan.Parent> parents = List.of();
    for (int i = 0; i < stages.size(); i++) {
      Stage stage = stages.get(i);
      Path dir = runDir.resolve(STAGES).resolve(stage.name());
      if (i > 0 && parents.isEmpty()) {
        progress.accept("stage " + stage.name() + ": the previous stage has no finished adapter");
        break;
      }
      SweepConfig sweep = prepare.prepare(stage, dir);
      List<SweepPlan.Planned> plan = stage.plan(sweep, i, parents);
      progress.accept(
          String.format(
              Locale.ROOT,
              "stage %d/%d %s: %d adapters%s → %s",
              i + 1,
              stages.size(),
              stage.name(),
              plan.size(),
              parents.isEmpty() ? "" : " on " + parents.stream().map(p -> p.id()).toList(),
              dir));
      SweepRunner.Result r =
          SweepRunner.runStage(spark, sweep, plan, dir, runId, threadsPerTask, progress, bars);
      r.board().forEach(e -> rungsById.put(e.id(), r.rungs()));
      done.add(new RunRecord.StageRun(stage, dir, parents, r.board()));
      parents = best(r.board(), stages.size() > i + 1 ? stages.get(i + 1).topK() : 0);
    }
    List<SweepRunner.Entry> board = new ArrayList<>();
    for (RunRecord.StageRun s : done) {
      board.addAll(0, s.board());
    }
    Leaderboard.write(spark, runDir, board, e -> rungsById.get(e.id()));
    MetricsTable.write(spark, runDir, board);
    if (!board.isEmpty() && board.get(0).status() == AdapterStatus.OK) {
      SweepRunner.copyDir(Path.of(board.get(0).outcome().adapterDir()), runDir.resolve("best"));
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    RunRecord.writeStaged(spark, runDir, runId, config, board, done, seconds);
    progress.accept("staged sweep report: " + RunReport.write(runDir));
    return Collections.unmodifiableList(board);
  }

  /** The {@code k} best finished adapters of a stage's board (ranked), as parents. */
  private static List<SweepPlan.Parent> best(List<SweepRunner.Entry> board, int k) {
    return board.stream()
        .filter(e -> e.status() == AdapterStatus.OK)
        .limit(k)
        .map(
            e ->
                new SweepPlan.Parent(
                    e.id(),
                    Path.of(e.outcome().adapterDir()).toAbsolutePath().normalize().toString(),
                    e.planned().depth()))
        .toList();
  }
}
