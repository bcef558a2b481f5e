package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.data.TokenRowsJsonl;
import io.loraspark.train.loop.Evaluator;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.quant.BaseQuant;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --method delta-lora} and {@code train --base-quant} on stories260K: the Delta-LoRA
 * run writes a rank-2r PEFT LoRA that {@code score --adapter} rates as {@code score} rates its
 * merged checkpoint, within 1e-4; a LoRA trained on the NF4 base learns; an unknown mode is a usage
 * error.
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

  /** The first 16 rows of the tokenized seed tasks. */
  private Path smallData() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("seeds.jsonl"), 128);
    Path small = tmp.resolve("small.jsonl");
    List<String> lines = Files.readAllLines(data);
    Files.write(small, lines.subList(0, Math.min(16, lines.size())));
    return small;
  }

  /**
   * {@code train --method delta-lora} with λ and K flags writes an ordinary rank-2r PEFT LoRA (r =
   * 16 for rank 8) with λ and K beside it and no merged copy; {@code score --adapter} rates it as
   * {@code merge} + {@code score} rate the merged checkpoint, within 1e-4; the flags with another
   * method are a one-line usage error.
   */
  @Test
  void deltaLoraExportsAsRankTwoRLoraThatScoresAsItsMerge() throws Exception {
    Path small = smallData();
    Path out = tmp.resolve("delta");
    JsonNode trained =
        json(
            train(
                small,
                out,
                "--method",
                "delta-lora",
                "--delta-update-ratio",
                "2",
                "--delta-start-step",
                "2"));
    assertThat(trained.has("merged")).isFalse();
    assertThat(out.resolve("merged")).doesNotExist();
    assertThat(out.resolve("README.md")).doesNotExist();
    assertThat(Files.readString(out.resolve("adapter_config.json")))
        .contains("\"peft_type\": \"LORA\"")
        .contains("\"r\": 16")
        .contains("\"lora_alpha\": 32");
    JsonNode provenance =
        new ObjectMapper().readTree(out.resolve("lora_spark_method.json").toFile());
    assertThat(provenance.get("method").asText()).isEqualTo("delta-lora");
    assertThat(provenance.get("update_ratio").asDouble()).isEqualTo(2.0);
    assertThat(provenance.get("start_step").asInt()).isEqualTo(2);
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
    Path merged = tmp.resolve("merged");
    json(
        CliRunner.run(
            "merge",
            "--model",
            CliScoreTest.STORIES.toString(),
            "--adapter",
            out.toString(),
            "--output",
            merged.toString()));
    double mergedLoss =
        json(CliRunner.run("score", "--model", merged.toString(), "--data", small.toString()))
            .get("loss")
            .asDouble();
    assertThat(adapter).isLessThan(trained.get("base_eval_loss").asDouble() - 0.1);
    System.out.printf(
        "score: delta-lora rank-2r adapter %.6f, merged checkpoint %.6f%n", adapter, mergedLoss);
    assertThat(mergedLoss).as("merged vs adapter").isCloseTo(adapter, within(1e-4));
    CliRunner bad = train(small, tmp.resolve("bad"), "--delta-update-ratio", "2");
    assertThat(bad.exitCode()).isEqualTo(2);
    assertThat(bad.errLines()).hasSize(1);
    assertThat(bad.err()).contains("--method delta-lora");
  }

  @Test
  void loraOnTheNf4BaseLearnsAndUnknownModesAreUsageErrors() throws Exception {
    Path small = smallData();
    JsonNode s = json(train(small, tmp.resolve("nf4"), "--base-quant", "nf4"));
    assertThat(s.get("eval_loss").asDouble())
        .as("eval loss after 12 steps on the NF4 base vs the NF4 base alone")
        .isLessThan(s.get("base_eval_loss").asDouble() - 0.1);
    CliRunner bad = train(small, tmp.resolve("bad"), "--base-quant", "fp8");
    assertThat(bad.exitCode()).isEqualTo(2);
    assertThat(bad.errLines()).hasSize(1);
    assertThat(bad.errLines().get(0)).contains("unknown base_quant 'fp8'; valid: none, int8, nf4");
  }

  /**
   * {@code train --recompute-activations} rebuilds each layer's activations in backward and must
   * write the very same adapter, byte for byte, and the same losses; a non-boolean {@code
   * recompute_activations} in a sweep config is an input error naming the key.
   */
  @Test
  void recomputedActivationsTrainTheSameAdapterByteForByte() throws Exception {
    Path small = smallData();
    JsonNode kept = json(train(small, tmp.resolve("kept"), "--method", "dora", "--dropout", "0.1"));
    JsonNode recomputed =
        json(
            train(
                small,
                tmp.resolve("recomputed"),
                "--method",
                "dora",
                "--dropout",
                "0.1",
                "--recompute-activations"));
    assertThat(recomputed.get("eval_loss").asDouble()).isEqualTo(kept.get("eval_loss").asDouble());
    assertThat(Files.readAllBytes(tmp.resolve("recomputed").resolve("adapter_model.safetensors")))
        .isEqualTo(Files.readAllBytes(tmp.resolve("kept").resolve("adapter_model.safetensors")));
    assertThat(kept.get("eval_loss").asDouble()).isLessThan(kept.get("base_eval_loss").asDouble());

    Path config = tmp.resolve("bad.yaml");
    Files.writeString(
        config,
        "model: %s\ndata: %s\nrecompute_activations: 3\n"
            .formatted(CliScoreTest.STORIES.toAbsolutePath(), small));
    CliRunner bad = CliRunner.run("train", "--config", config.toString());
    assertThat(bad.exitCode()).isEqualTo(2);
    assertThat(bad.errLines()).hasSize(1);
    assertThat(bad.errLines().get(0))
        .contains("'recompute_activations' must be true or false but was 3");
  }

  /**
   * A Spark sweep with {@code base_quant: nf4} (and recomputed activations, which change no
   * number): the executors' base is the NF4 one (its base eval loss differs from the float32 score
   * of the same rows by NF4's rounding), Delta-LoRA trains fused beside LoRA and DoRA, and every
   * adapter directory is a PEFT LoRA (Delta-LoRA's at rank 2r, with λ and K beside it).
   */
  @Test
  void sweepOnAnNf4BaseWithDeltaLora() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 128);
    Path config = tmp.resolve("quant.yaml");
    Files.writeString(
        config,
        """
        model: %s
        data: %s
        run_id: quant
        master: local[2]
        adapters_per_task: 3
        checkpoint_every: 0
        base_quant: nf4
        recompute_activations: true
        defaults: {lr: 2.0e-3, steps: 6, batch_size: 4, targets: [q, v], rank: 2}
        grid:
          method: [lora, delta-lora, dora]
        pruning: none
        """
            .formatted(CliScoreTest.STORIES.toAbsolutePath(), data));
    Path run = tmp.resolve("quant");
    CliRunner r = CliRunner.run("train", "--config", config.toString(), "--output", run.toString());
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isZero();
    List<String> lines = Files.readAllLines(run.resolve("leaderboard.csv"));
    List<String> header = java.util.Arrays.asList(lines.get(0).split(","));
    assertThat(lines).hasSize(4);
    double base = Double.NaN;
    for (String line : lines.subList(1, 4)) {
      String[] row = line.split(",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)");
      assertThat(row[header.indexOf("status")]).as(line).isEqualTo("ok");
      String id = row[header.indexOf("adapter_id")];
      boolean delta = row[header.indexOf("method")].equals("delta-lora");
      Path dir = run.resolve("adapters").resolve(id);
      assertThat(Files.exists(dir.resolve("lora_spark_method.json")))
          .as("%s records Delta-LoRA's λ and K", id)
          .isEqualTo(delta);
      assertThat(dir.resolve("README.md")).as("%s is PEFT", id).doesNotExist();
      assertThat(Files.readString(dir.resolve("adapter_config.json")))
          .contains("\"peft_type\": \"LORA\"")
          .contains(delta ? "\"r\": 4" : "\"r\": 2");
      base = Double.parseDouble(row[header.indexOf("base_eval_loss")]);
    }
    List<TokenRow> eval = new java.util.ArrayList<>();
    ModelConfig c = ModelConfig.load(CliScoreTest.STORIES);
    for (TokenRow row : TokenRowsJsonl.read(data, TokenLimits.of(c))) {
      if (TokenRowsJsonl.isEvalRow(row)) {
        eval.add(row);
      }
    }
    double fp32 = baseLoss(CheckpointLoader.load(CliScoreTest.STORIES), eval);
    double nf4 = baseLoss(CheckpointLoader.load(CliScoreTest.STORIES, BaseQuant.NF4), eval);
    System.out.printf(
        "sweep base_eval_loss %.6f; NF4 base %.6f, float32 base %.6f%n", base, nf4, fp32);
    assertThat(base).as("the executors' base is the NF4 one").isCloseTo(nf4, within(1e-4));
    assertThat(Math.abs(nf4 - fp32)).as("NF4 vs float32 base loss").isGreaterThan(1e-3);
    String best = Files.readString(run.resolve("best").resolve("adapter_config.json"));
    assertThat(best).contains("\"peft_type\": \"LORA\"");
    assertThat(Files.exists(run.resolve("best").resolve("lora_spark_method.json")))
        .as("best/ records λ and K exactly when it is Delta-LoRA (rank 2r = 4)")
        .isEqualTo(best.contains("\"r\": 4"));
  }

  private static double baseLoss(ModelWeights w, List<TokenRow> rows) {
    return Evaluator.score(new Transformer(w), Adapters.NONE, rows, Evaluator.DEFAULT_BATCH_SIZE, 0)
        .mean(0);
  }
}
