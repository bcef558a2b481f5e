package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code run}'s options that do not start Spark: the spark-submit line and input errors. */
class RunCliTest {
  static final Path QUICKSTART = CliScoreTest.ROOT.resolve("conf/quickstart.yaml");

  @TempDir Path tmp;

  @Test
  void printSparkSubmitShowsTheSameRunAsASparkSubmitCommand() {
    CliRunner r =
        CliRunner.run(
            "run",
            "--config",
            QUICKSTART.toString(),
            "--run-date",
            "2026-11-22",
            "--print-spark-submit");
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isZero();
    String line = r.out().strip();
    assertThat(line.lines()).hasSize(1);
    assertThat(line)
        .startsWith("spark-submit --master local[*] --class io.loraspark.pipeline.cli.Main")
        .contains(" run --config " + QUICKSTART.toAbsolutePath().normalize())
        .contains(" --run-id quickstart-2026-11-22 ")
        .contains("runs/quickstart-2026-11-22")
        .contains("--conf spark.task.cpus=1");
  }

  /** Every example config in conf/ is valid: it parses and expands into adapters. */
  @Test
  void bundledConfigsAreValid() throws Exception {
    try (var files = Files.list(CliScoreTest.ROOT.resolve("conf"))) {
      List<Path> yamls = files.filter(f -> f.toString().endsWith(".yaml")).toList();
      assertThat(yamls).hasSizeGreaterThanOrEqualTo(3);
      for (Path f : yamls) {
        var c = io.loraspark.pipeline.sweep.SweepConfig.read(f);
        assertThat(io.loraspark.pipeline.sweep.SweepPlan.expand(c)).as(f.toString()).isNotEmpty();
        if (!c.stages().isEmpty()) { // a staged config: every stage plans (parents stood in for)
          assertThat(io.loraspark.pipeline.sweep.StagedSweep.validate(c))
              .as(f.toString())
              .isGreaterThan(c.stages().size() - 1);
        }
      }
    }
  }

  @Test
  void missingModelDirAndUnwritableOutputAreExit2BeforeSparkStarts() throws Exception {
    Path c = tmp.resolve("run.yaml");
    Files.writeString(c, "model: " + tmp.resolve("nope") + "\ndata: x.jsonl\n");
    CliRunner r =
        CliRunner.run("run", "--config", c.toString(), "--output", tmp.resolve("o").toString());
    assertThat(r.exitCode()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.errLines().get(0)).contains("run.yaml", "model", "nope", "config.json");

    Path file = Files.writeString(tmp.resolve("a-file"), "x");
    Files.writeString(c, "model: " + CliScoreTest.STORIES.toAbsolutePath() + "\ndata: x.jsonl\n");
    CliRunner w =
        CliRunner.run(
            "train", "--config", c.toString(), "--output", file.resolve("run").toString());
    assertThat(w.exitCode()).isEqualTo(2);
    assertThat(w.errLines()).hasSize(1);
    assertThat(w.errLines().get(0)).contains("output", "a-file", "not a writable directory");
  }

  @Test
  void badRunDateIsExit2() {
    CliRunner r =
        CliRunner.run("run", "--config", QUICKSTART.toString(), "--run-date", "22/11/2026");
    assertThat(r.exitCode()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.errLines().get(0)).contains("--run-date", "YYYY-MM-DD");
  }

  @Test
  void unknownPreprocessKeyIsExit2ListingTheValidOnes() throws Exception {
    Path c = tmp.resolve("run.yaml");
    Files.writeString(c, "model: m\npreprocess:\n  input: x.jsonl\n  maxlen: 3\n");
    CliRunner r = CliRunner.run("run", "--config", c.toString());
    assertThat(r.exitCode()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.errLines().get(0)).contains("unknown key 'preprocess.maxlen'", "max_seq_len");
  }
}
