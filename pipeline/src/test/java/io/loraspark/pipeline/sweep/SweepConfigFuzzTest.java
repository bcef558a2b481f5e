package io.loraspark.pipeline.sweep;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.loraspark.train.spark.GroupTask;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes sweep YAML: {@link SweepConfig#read} then {@link SweepPlan#expand}. Contract: both
 * succeed, or throw {@link IllegalArgumentException} naming the file; every adapter id is unique
 * and its directory stays inside the run's {@code adapters/} whatever the grid values. Anything
 * else (NPE, class cast, out-of-memory from a huge grid, a hang) is a bug. Corpus: {@code
 * SweepConfigFuzzTestInputs/}.
 */
class SweepConfigFuzzTest {

  @TempDir static Path dir;

  @DictionaryEntries({
    "grid:",
    "defaults:",
    "adapters:",
    "pruning:",
    "rank:",
    "lr_ratio:",
    "targets:",
    "replicas:",
    "adapters_per_task:",
    "successive_halving",
    "eta:",
    "min_steps:",
    "run_id:",
    "[",
    "]",
    "{",
    "}",
    "- ",
    ": ",
    "&a",
    "*a",
    "<<:",
    "!!binary",
    "..",
    "/"
  })
  @FuzzTest(maxDuration = "30s")
  void readAndExpand(byte[] bytes) throws IOException {
    Path file = Files.write(dir.resolve("sweep.yaml"), bytes);
    List<SweepPlan.Planned> plan;
    try {
      plan = SweepPlan.expand(SweepConfig.read(file));
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names the file").contains(file.toString());
      return;
    }
    Path runDir = dir.resolve("run");
    Set<String> ids = new HashSet<>();
    for (SweepPlan.Planned p : plan) {
      String id = p.spec().id();
      assertThat(ids.add(id)).as("adapter id %s is unique", id).isTrue();
      assertThat(GroupTask.adapterDir(runDir, id).normalize().getParent())
          .as("adapter %s stays in adapters/", id)
          .isEqualTo(runDir.resolve("adapters"));
    }
  }
}
