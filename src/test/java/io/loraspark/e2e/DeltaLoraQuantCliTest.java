package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --method delta-lora} and {@code train --base-quant} on stories260K: the Delta-LoRA
 * run writes a non-PEFT adapter directory (peft_type DELTA_LORA, a README) and a merged checkpoint
 * that {@code score} rates as {@code score --adapter} rates the adapter, within 1e-4; a LoRA
 * trained on the NF4 base learns; an unknown mode is a usage error.
 */
class DeltaLoraQuantCliTest {
  @TempDir Path tmp;

  private static JsonNode json(CliRunner r) throws Exception {
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isZero();
    return new ObjectMapper().readTree(r.out());
  }

  private static CliRunner train(Path data, Path out, String... extra) {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "train",
                "--model",
                CliScoreTest.STORIES.toString(),
                "--data",
                data.toString(),
                "--eval-data",
                data.toString(),
                "--output",
                out.toString(),
                "--steps",
                "12",
                "--batch-size",
                "4",
                "--lr",
                "5e-3",
                "--quiet"));
    args.addAll(List.of(extra));
    return CliRunner.run(args.toArray(String[]::new));
  }

  @Test
  void deltaLoraMergedCheckpointScoresAsTheAdapter() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("seeds.jsonl"), 128);
    Path small = tmp.resolve("small.jsonl");
    List<String> lines = Files.readAllLines(data);
    Files.write(small, lines.subList(0, Math.min(16, lines.size())));
    Path out = tmp.resolve("delta");
    JsonNode trained = json(train(small, out, "--method", "delta-lora"));
    assertThat(Path.of(trained.get("merged").asText())).isEqualTo(out.resolve("merged"));
    assertThat(Files.readString(out.resolve("adapter_config.json")))
        .contains("\"peft_type\": \"DELTA_LORA\"");
    assertThat(Files.readString(out.resolve("README.md"))).contains("not a PEFT adapter");
    double adapter =
        json(CliRunner.run(
                "score",
                "--model",
                CliScoreTest.STORIES.toString(),
                "--adapter",
                out.toString(),
                "--data",
                small.toString()))
            .get("loss")
            .asDouble();
    double merged =
        json(CliRunner.run(
                "score", "--model", out.resolve("merged").toString(), "--data", small.toString()))
            .get("loss")
            .asDouble();
    assertThat(adapter).isLessThan(trained.get("base_eval_loss").asDouble() - 0.1);
    assertThat(merged).as("merged vs adapter").isCloseTo(adapter, within(1e-4));
  }

  @Test
  void loraOnTheNf4BaseLearnsAndUnknownModesAreUsageErrors() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("seeds.jsonl"), 128);
    Path small = tmp.resolve("small.jsonl");
    List<String> lines = Files.readAllLines(data);
    Files.write(small, lines.subList(0, Math.min(16, lines.size())));
    JsonNode s = json(train(small, tmp.resolve("nf4"), "--base-quant", "nf4"));
    assertThat(s.get("eval_loss").asDouble())
        .as("eval loss after 12 steps on the NF4 base vs the NF4 base alone")
        .isLessThan(s.get("base_eval_loss").asDouble() - 0.1);
    CliRunner bad = train(small, tmp.resolve("bad"), "--base-quant", "fp8");
    assertThat(bad.exitCode()).isEqualTo(2);
    assertThat(bad.errLines()).hasSize(1);
    assertThat(bad.errLines().get(0)).contains("unknown base_quant 'fp8'; valid: none, int8, nf4");
  }
}
