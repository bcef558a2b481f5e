package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** The README's main command: {@code bin/lora-pipeline run} on the bundled quickstart. */
class RunQuickstartIT {
  @TempDir Path tmp;

  @Test
  void quickstartRunsThePipelineEndToEnd() throws Exception {
    Path run = tmp.resolve("quickstart");
    LauncherIT.Result r = LauncherIT.launch("run", "--output", run.toString());
    assertThat(r.code()).as("exit code, stderr: %s", r.errLines()).isZero();
    assertThat(r.out().lines().toList()).as("one JSON line on stdout").hasSize(1);
    JsonNode s = new ObjectMapper().readTree(r.out());
    JsonNode prep = s.get("preprocess");
    assertThat(prep.get("input_rows").asLong())
        .isEqualTo(
            prep.get("accepted").asLong()
                + prep.get("rejected").asLong()
                + prep.get("duplicates").asLong());
    assertThat(prep.get("accepted").asLong())
        .as("self-instruct rows within 256 tokens")
        .isGreaterThan(100);
    assertThat(s.get("adapters").asInt()).isEqualTo(4);
    assertThat(s.get("ok").asInt() + s.get("pruned").asInt()).isEqualTo(4);
    assertThat(s.get("best_eval_loss").asDouble())
        .as("best adapter vs base on the held-out split")
        .isLessThan(s.get("base_eval_loss").asDouble());
    assertThat(s.get("serve_command").asText())
        .as("the command that serves the run")
        .startsWith("bin/lora-pipeline serve --model ")
        .endsWith(" --run " + s.get("run_dir").asText(""));
    for (String f :
        List.of(
            "manifest.json",
            "shards",
            "rejected",
            "leaderboard.csv",
            "leaderboard.parquet",
            "metrics.csv",
            "metrics",
            "run.json",
            "best")) {
      assertThat(run.resolve(f)).as(f).exists();
    }
    PeftAdapter.load(
        run.resolve("best"),
        ModelConfig.load(LauncherIT.ROOT.resolve("models/stories260K")),
        DataType.FLOAT);
    assertThat(Files.readAllLines(run.resolve("leaderboard.csv"))).hasSize(5);
    assertThat(r.errLines()).anyMatch(l -> l.contains("sweep round 3/3"));
  }
}
