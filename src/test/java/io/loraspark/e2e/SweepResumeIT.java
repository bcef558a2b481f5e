package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.MatchResult;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resume of a sweep whose driver died: {@code bin/lora-pipeline train --config} with successive
 * halving on local Spark is SIGKILLed once round 1 is recorded and round 2 has checkpointed past
 * its start (so the kill lands mid-round, between checkpoints); rerunning the same command (same
 * run id and output) reuses round 1, continues every adapter from its checkpoint, and ends with the
 * leaderboard and per-step metrics of an uninterrupted run.
 */
class SweepResumeIT {
  static final Path ROOT = LauncherIT.ROOT;

  /** Rungs at 6, 12 and 24 steps: 4 adapters, then 2, then 1; two adapters per task. */
  static final String SWEEP =
      """
      model: '%s'
      data: '%s'
      master: 'local[2]'
      adapters_per_task: 2
      checkpoint_every: 1
      defaults:
        lr: 2.0e-3
        steps: 24
        batch_size: 4
        targets: [q, v, o, down]
      grid:
        rank: [2, 4]
        lr_ratio: [1, 8]
      pruning:
        strategy: successive_halving
        eta: 2
        min_steps: 6
      """;

  static final int FIRST_RUNG = 6;
  static final String RUN_ID = "resume";

  static final Pattern GROUP_LINE =
      Pattern.compile(
          "run "
              + RUN_ID
              + " round (\\d+) group (\\d+) attempt (\\d+): (\\d+) adapters \\((\\d+) resumed\\)"
              + " to step (\\d+)");
  private static final Pattern STEP = Pattern.compile("step-(\\d+)");

  @TempDir Path tmp;

  record Run(int code, String out, String err, double seconds) {}

  @Test
  void killedDriverRerunWithTheSameRunIdFinishesWithoutRetraining() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 160);
    Path config = tmp.resolve("sweep.yaml");
    Files.writeString(
        config,
        SWEEP.formatted(
            ROOT.resolve("models/stories260K").toAbsolutePath(), data.toAbsolutePath()));

    // the reference: the same sweep, uninterrupted
    Path straight = tmp.resolve("straight");
    Run reference = finish(start(config, straight, "straight"), "straight");
    assertThat(reference.code()).as("uninterrupted run; stderr:%n%s", reference.err()).isZero();
    JsonNode runJson = new ObjectMapper().readTree(straight.resolve("run.json").toFile());
    assertThat(runJson.get("rungs").toString()).isEqualTo("[6,12,24]");

    // the interrupted run: SIGKILL the driver (and anything it started) mid round 2
    Path out = tmp.resolve("run");
    long t0 = System.nanoTime();
    Process first = start(config, out, "first");
    int killedAtStep;
    try {
      killedAtStep = awaitRoundTwoCheckpoint(first, out);
    } finally {
      destroyTree(first.toHandle());
    }
    double firstSeconds = (System.nanoTime() - t0) / 1e9;
    assertThat(first.exitValue()).as("the killed driver's exit code").isNotZero();
    assertThat(out.resolve("leaderboard.csv")).as("the killed run did not finish").doesNotExist();
    assertThat(out.resolve("rounds/round-3.json")).doesNotExist();
    byte[] round1 = Files.readAllBytes(out.resolve("rounds/round-1.json"));

    // the rerun: same command, same run id and output directory
    Run rerun = finish(start(config, out, "rerun"), "rerun");
    assertThat(rerun.code()).as("rerun exit code; stderr:%n%s", rerun.err()).isZero();
    assertThat(rerun.err())
        .contains(
            "sweep round 1: already done, results from " + out.resolve("rounds/round-1.json"));
    assertThat(Files.readAllBytes(out.resolve("rounds/round-1.json")))
        .as("round 1's record is reused, not rewritten")
        .isEqualTo(round1);

    // no adapter started over: round 1 is not run again, and every task of a later round resumed
    // all of its adapters from their checkpoints
    List<MatchResult> groups = GROUP_LINE.matcher(rerun.err()).results().toList();
    assertThat(groups)
        .as("GroupTask log lines in the rerun's stderr:%n%s", rerun.err())
        .isNotEmpty();
    for (MatchResult g : groups) {
      assertThat(Integer.parseInt(g.group(1)))
          .as("round of '%s' (0-based; round 1 was done)", g.group())
          .isGreaterThanOrEqualTo(1);
      assertThat(g.group(5)).as("resumed adapters in '%s'", g.group()).isEqualTo(g.group(4));
    }
    assertThat(groups)
        .as(
            "round 2 (0-based 1) ran again, continuing from the checkpoints at step %d",
            killedAtStep)
        .anyMatch(g -> g.group(1).equals("1"));

    // the same leaderboard as the uninterrupted run: rank, adapter_id, eval_loss, status, steps,
    // train_loss, pruned_at_round
    int[] cols = {0, 1, 5, 6, 10, 11, 15};
    List<List<String>> board = SweepClusterIT.leaderboard(out);
    assertThat(board).hasSize(4);
    assertThat(board).extracting(r -> r.get(6)).containsExactly("ok", "pruned", "pruned", "pruned");
    assertThat(SweepClusterIT.project(board, cols))
        .as("leaderboard vs the uninterrupted run's")
        .isEqualTo(SweepClusterIT.project(SweepClusterIT.leaderboard(straight), cols));

    // per-step metrics: each step of each adapter exactly once, equal to the uninterrupted run's
    // (all but tokens_per_s)
    int[] metricCols = {0, 1, 2, 3, 4, 5, 6};
    List<List<String>> metrics = SweepClusterIT.csv(out.resolve("metrics.csv"));
    Map<String, List<Integer>> steps = new TreeMap<>();
    for (List<String> row : metrics) {
      steps.computeIfAbsent(row.get(0), k -> new ArrayList<>()).add(Integer.parseInt(row.get(1)));
    }
    for (List<String> row : board) {
      int n = Integer.parseInt(row.get(10));
      assertThat(steps.get(row.get(1)))
          .as("metric steps of %s", row.get(1))
          .containsExactlyElementsOf(Stream.iterate(1, i -> i + 1).limit(n).toList());
    }
    assertThat(SweepClusterIT.project(metrics, metricCols))
        .isEqualTo(
            SweepClusterIT.project(
                SweepClusterIT.csv(straight.resolve("metrics.csv")), metricCols));

    try (Stream<Path> s = Files.list(out.resolve("adapters"))) {
      assertThat(s.map(p -> p.getFileName().toString()))
          .containsExactlyInAnyOrder("a000-r2-x1", "a001-r2-x8", "a002-r4-x1", "a003-r4-x8");
    }
    System.err.printf(
        "SweepResumeIT: uninterrupted %.1fs, killed at step %d after %.1fs, rerun %.1fs%n",
        reference.seconds(), killedAtStep, firstSeconds, rerun.seconds());
  }

  /**
   * Waits until round 1 is recorded and both adapters it kept have checkpoints at the same step
   * past the first rung (round 2 is under way), and returns that step.
   *
   * <p>The same step, because the two train fused in one task: an adapter that resumed behind its
   * group mate would later take steps alone, in a smaller fused batch, whose float32 sums round
   * differently (about 1e-7 relative), and this test compares the runs exactly.
   */
  static int awaitRoundTwoCheckpoint(Process driver, Path out) throws Exception {
    Path round1 = out.resolve("rounds/round-1.json");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(150);
    List<String> kept = null;
    while (true) {
      if (!driver.isAlive()) {
        fail(
            "the sweep ended (exit %d) before it could be killed in round 2; stderr:%n%s",
            driver.exitValue(), read(out.resolveSibling("first.err")));
      }
      if (System.nanoTime() > deadline) {
        fail(
            "round 2 did not checkpoint within 150 s; stderr:%n%s",
            read(out.resolveSibling("first.err")));
      }
      if (kept == null && Files.exists(round1)) {
        kept = keptAfterRoundOne(round1);
      }
      if (kept != null) {
        int a = newestCheckpoint(out, kept.get(0));
        int b = newestCheckpoint(out, kept.get(1));
        if (a == b && a > FIRST_RUNG) {
          return a;
        }
      }
      Thread.sleep(5);
    }
  }

  /** The two adapters with the lowest eval loss in round 1 (η = 2 keeps 2 of 4). */
  static List<String> keptAfterRoundOne(Path round1) throws IOException {
    JsonNode n = new ObjectMapper().readTree(round1.toFile());
    List<JsonNode> outcomes = new ArrayList<>();
    n.get("outcomes").forEach(outcomes::add);
    assertThat(outcomes).hasSize(4);
    return outcomes.stream()
        .sorted(java.util.Comparator.comparingDouble(o -> o.get("evalLoss").asDouble()))
        .limit(2)
        .map(o -> o.get("adapterId").asText())
        .toList();
  }

  /** The highest checkpoint step of an adapter under {@code out/checkpoints}, or 0. */
  static int newestCheckpoint(Path out, String adapterId) {
    int best = 0;
    try (Stream<Path> ckpts = Files.list(out.resolve("checkpoints").resolve(adapterId))) {
      for (Path c : ckpts.toList()) {
        Matcher m = STEP.matcher(c.getFileName().toString());
        if (m.matches()) {
          best = Math.max(best, Integer.parseInt(m.group(1)));
        }
      }
    } catch (IOException e) {
      // not there yet, or changed under us; look again next time
    }
    return best;
  }

  Process start(Path config, Path out, String name) throws IOException {
    List<String> cmd =
        List.of(
            ROOT.resolve("bin/lora-pipeline").toString(),
            "train",
            "--config",
            config.toString(),
            "--output",
            out.toString(),
            "--run-id",
            RUN_ID);
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(ROOT.toFile());
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    pb.redirectOutput(tmp.resolve(name + ".out").toFile());
    pb.redirectError(tmp.resolve(name + ".err").toFile());
    return pb.start();
  }

  Run finish(Process p, String name) throws Exception {
    long t0 = System.nanoTime();
    boolean done = p.waitFor(120, TimeUnit.SECONDS);
    String err = read(tmp.resolve(name + ".err"));
    if (!done) {
      destroyTree(p.toHandle());
      fail("%s did not finish within 120 s; stderr:%n%s", name, err);
    }
    return new Run(
        p.exitValue(), read(tmp.resolve(name + ".out")), err, (System.nanoTime() - t0) / 1e9);
  }

  /** SIGKILLs a process and all its descendants and waits until every one is gone. */
  static void destroyTree(ProcessHandle h) throws Exception {
    List<ProcessHandle> all = new ArrayList<>(h.descendants().toList());
    all.add(h);
    all.forEach(ProcessHandle::destroyForcibly);
    for (ProcessHandle p : all) {
      p.onExit().get(30, TimeUnit.SECONDS);
    }
    assertThat(all).noneMatch(ProcessHandle::isAlive);
  }

  static String read(Path file) {
    return SweepClusterIT.read(file);
  }
}
