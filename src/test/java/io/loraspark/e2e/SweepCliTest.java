package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** {@code train --config}: a rank × lr_ratio sweep with successive halving on local Spark. */
class SweepCliTest {
  @TempDir Path tmp;

  static final String SWEEP =
      """
      model: %s
      data: %s
      run_id: test-sweep
      master: local[2]
      adapters_per_task: 2
      checkpoint_every: 0
      defaults:
        lr: 1.0e-3
        steps: 12
        batch_size: 4
        targets: [q, v, o, down]
      grid:
        rank: [2, 4]
        lr_ratio: [1, 8]
      pruning:
        strategy: successive_halving
        eta: 2
        min_steps: 3
      """;

  @Test
  void sweepPrunesRanksAndExportsTheBest() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 160);
    Path config = tmp.resolve("sweep.yaml");
    Files.writeString(config, SWEEP.formatted(CliScoreTest.STORIES.toAbsolutePath(), data));
    Path run = tmp.resolve("run");
    CliRunner r = CliRunner.run("train", "--config", config.toString(), "--output", run.toString());
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isZero();
    JsonNode summary = new ObjectMapper().readTree(r.out());
    assertThat(summary.get("adapters").asInt()).isEqualTo(4);
    // rungs 3, 6, 12: 4 adapters → 2 → 1
    assertThat(summary.get("ok").asInt()).isEqualTo(1);
    assertThat(summary.get("pruned").asInt()).isEqualTo(3);
    assertThat(r.err()).contains("round 1/3", "round 3/3");
    // each round's bar ends with the accumulators' totals: 4 adapters x 3 steps, then 2 x 3, 1 x 6
    assertThat(r.err())
        .contains(
            "round 1/3 [####################] 100% · tasks 2/2 · adapters 4/4 · steps 12/12",
            "round 2/3 [####################] 100% · tasks 1/1 · adapters 2/2 · steps 6/6",
            "round 3/3 [####################] 100% · tasks 1/1 · adapters 1/1 · steps 6/6");

    List<String> board = Files.readAllLines(run.resolve("leaderboard.csv"));
    assertThat(board.get(0))
        .startsWith("rank,adapter_id,method,lora_rank,lr_ratio,eval_loss,status");
    assertThat(board).hasSize(5);
    assertThat(board.get(1)).contains(summary.get("best_adapter").asText(), ",ok,");
    assertThat(board.subList(2, 5)).allMatch(l -> l.contains(",pruned,"));
    assertThat(board.stream().skip(1).map(l -> l.split(",")[1]))
        .containsExactlyInAnyOrder("a000-r2-x1", "a001-r2-x8", "a002-r4-x1", "a003-r4-x8");

    Path best = run.resolve("best");
    LoraWeights w = PeftAdapter.load(best, ModelConfig.load(CliScoreTest.STORIES), DataType.FLOAT);
    assertThat(w.config().targets()).hasSize(4);
    assertThat(Files.readAllBytes(best.resolve("adapter_model.safetensors")))
        .isEqualTo(
            Files.readAllBytes(
                run.resolve("adapters")
                    .resolve(summary.get("best_adapter").asText())
                    .resolve("adapter_model.safetensors")));
    assertThat(Files.readString(run.resolve("report.html")))
        .contains(summary.get("best_adapter").asText(), "data:image/png;base64,");
    JsonNode runJson = new ObjectMapper().readTree(run.resolve("run.json").toFile());
    assertThat(runJson.get("rungs").toString()).isEqualTo("[3,6,12]");
    assertThat(runJson.get("rounds")).hasSize(3);
    JsonNode provenance = runJson.get("provenance");
    assertThat(provenance.get("base_model_sha256").asText())
        .as("run.json provenance: the base model's content hash")
        .isEqualTo(
            io.loraspark.train.spark.BaseModelCache.contentHash(
                Path.of(runJson.get("model").asText()).toAbsolutePath()));
    assertThat(provenance.get("data_fingerprint").asText()).isNotBlank();
    JsonNode resolved = runJson.get("adapters").get(0).get("resolved");
    for (String setting :
        List.of(
            "base_quant", "checkpoint_every", "recompute_activations", "warmup_steps", "seed")) {
      assertThat(resolved.has(setting)).as("run.json resolved %s: %s", setting, resolved).isTrue();
    }

    // the survivor's metrics cover all 12 steps across three rounds; a pruned one's stop at its
    // rung
    List<String> metrics = Files.readAllLines(run.resolve("metrics.csv"));
    String bestId = summary.get("best_adapter").asText();
    assertThat(metrics.stream().filter(l -> l.startsWith(bestId + ","))).hasSize(12);

    SparkSession spark =
        SparkSession.builder().master("local[1]").config("spark.ui.enabled", "false").getOrCreate();
    try {
      List<Row> rows =
          spark.read().parquet(run.resolve("leaderboard.parquet").toString()).collectAsList();
      assertThat(rows).hasSize(4);
      assertThat(spark.read().parquet(run.resolve("metrics").toString()).count())
          .isEqualTo(metrics.size() - 1);
    } finally {
      spark.stop();
    }

    // rerunning the finished sweep resumes every adapter from its final checkpoint: same ranking
    CliRunner again =
        CliRunner.run("train", "--config", config.toString(), "--output", run.toString());
    assertThat(again.exitCode()).as("stderr: %s", again.err()).isZero();
    assertThat(
            Files.readAllLines(run.resolve("leaderboard.csv")).stream()
                .map(l -> Arrays.asList(l.split(",")).subList(0, 7))
                .toList())
        .isEqualTo(board.stream().map(l -> Arrays.asList(l.split(",")).subList(0, 7)).toList());
  }

  /**
   * Issue 8's sweep: method × rank through Spark, ranked in one leaderboard with each method's
   * trainable-parameter count.
   */
  @Test
  void methodsAreSweptFusedAndRankedTogether() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 160);
    Path config = tmp.resolve("methods.yaml");
    Files.writeString(
        config,
        """
        model: %s
        data: %s
        run_id: methods
        master: local[2]
        adapters_per_task: 4
        checkpoint_every: 0
        defaults: {lr: 2.0e-3, steps: 6, batch_size: 4, targets: [q, v]}
        grid:
          method: [lora, lora-fa, dora, pissa, vera, adalora, delta-lora]
          rank: [2, 4]
        pruning: none
        """
            .formatted(CliScoreTest.STORIES.toAbsolutePath(), data));
    Path run = tmp.resolve("methods");
    CliRunner r = CliRunner.run("train", "--config", config.toString(), "--output", run.toString());
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isZero();
    List<String> header =
        Arrays.asList(Files.readAllLines(run.resolve("leaderboard.csv")).get(0).split(","));
    int method = header.indexOf("method");
    int rank = header.indexOf("lora_rank");
    int status = header.indexOf("status");
    int params = header.indexOf("trainable_params");
    int eval = header.indexOf("eval_loss");
    int base = header.indexOf("base_eval_loss");
    Map<String, Long> paramsAtRank2 = new java.util.HashMap<>();
    List<String[]> rows =
        Files.readAllLines(run.resolve("leaderboard.csv")).stream()
            .skip(1)
            .map(l -> l.split(",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)"))
            .toList();
    assertThat(rows).hasSize(14);
    for (String[] row : rows) {
      assertThat(row[status]).as("status of %s", String.join(",", row)).isEqualTo("ok");
      if (row[rank].equals("2")) {
        paramsAtRank2.put(row[method], Long.parseLong(row[params]));
      }
    }
    assertThat(paramsAtRank2.keySet())
        .containsExactlyInAnyOrder(
            "lora", "lora-fa", "dora", "pissa", "vera", "adalora", "delta-lora");
    // LoRA-FA trains B only; DoRA adds a magnitude per output; PiSSA and Delta-LoRA train what
    // LoRA trains (Delta-LoRA's ΔW moves without a gradient)
    assertThat(paramsAtRank2.get("lora-fa")).isLessThan(paramsAtRank2.get("lora"));
    assertThat(paramsAtRank2.get("dora")).isGreaterThan(paramsAtRank2.get("lora"));
    assertThat(paramsAtRank2.get("pissa")).isEqualTo(paramsAtRank2.get("lora"));
    assertThat(paramsAtRank2.get("delta-lora")).isEqualTo(paramsAtRank2.get("lora"));
    // VeRA trains λ_d [r] and λ_b [out] per module: stories260K q (64 out) and v (32 out), 5 layers
    assertThat(paramsAtRank2.get("vera")).isEqualTo(5L * (2 + 64 + 2 + 32));
    // AdaLoRA trains A, B and E at init_r = 3 for target_r 2: 3 (in + out + 1) per module
    assertThat(paramsAtRank2.get("adalora")).isEqualTo(5L * 3 * ((64 + 64 + 1) + (64 + 32 + 1)));
    assertThat(Double.parseDouble(rows.get(0)[eval]))
        .isLessThan(Double.parseDouble(rows.get(0)[base]));
    assertThat(rows.stream().map(x -> Double.parseDouble(x[eval])).toList()).isSorted();
  }

  @Test
  void planThatCannotFitTheExecutorIsRefusedUpFrontWithTheNumbers() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 160);
    Path config = tmp.resolve("big.yaml");
    Files.writeString(
        config,
        SWEEP.formatted(CliScoreTest.STORIES.toAbsolutePath(), data)
            + "spark:\n  spark.executor.extraJavaOptions: -Dorg.bytedeco.javacpp.maxphysicalbytes=2m\n");
    CliRunner r =
        CliRunner.run(
            "train", "--config", config.toString(), "--output", tmp.resolve("r").toString());
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.errLines().get(0))
        .contains("per executor", "base model", "2.0 MiB", "maxphysicalbytes", "adapters_per_task");
    assertThat(tmp.resolve("r").resolve("checkpoints")).doesNotExist();
  }

  /** Two data-parallel replicas on disjoint halves of the rows, aggregated exactly by ΔW. */
  @Test
  void replicasTrainOnDisjointHalvesAndAreAggregated() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 160);
    Path config = tmp.resolve("replicas.yaml");
    Files.writeString(
        config,
        """
        model: %s
        data: %s
        master: local[2]
        adapters_per_task: 1
        checkpoint_every: 0
        defaults: {lr: 1.0e-3, steps: 6, batch_size: 4, targets: [q, v]}
        adapters:
          - {rank: 4, replicas: 2}
        """
            .formatted(CliScoreTest.STORIES.toAbsolutePath(), data));
    Path run = tmp.resolve("run");
    CliRunner r = CliRunner.run("train", "--config", config.toString(), "--output", run.toString());
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isZero();
    assertThat(r.err()).contains("aggregated from 2 replicas");
    List<String> board = Files.readAllLines(run.resolve("leaderboard.csv"));
    assertThat(board).hasSize(2);
    assertThat(board.get(1)).contains("a000-r4-R2", ",ok,");
    for (String d : List.of("a000-r4-R2", "a000-r4-R2-rep0", "a000-r4-R2-rep1")) {
      assertThat(run.resolve("adapters").resolve(d).resolve("adapter_model.safetensors")).exists();
    }
    List<String> metrics = Files.readAllLines(run.resolve("metrics.csv"));
    assertThat(metrics.stream().filter(l -> l.startsWith("a000-r4-R2-rep0,"))).hasSize(6);
    assertThat(metrics.stream().filter(l -> l.startsWith("a000-r4-R2-rep1,"))).hasSize(6);
    ModelConfig mc = ModelConfig.load(CliScoreTest.STORIES);
    LoraWeights agg = PeftAdapter.load(run.resolve("best"), mc, DataType.FLOAT);
    LoraWeights r0 = PeftAdapter.load(run.resolve("adapters/a000-r4-R2-rep0"), mc, DataType.FLOAT);
    assertThat(agg.config().rank()).isEqualTo(4);
    // the replicas saw different rows, so they differ; the aggregate is neither of them
    assertThat(
            agg.modules()
                .iterator()
                .next()
                .b()
                .equalsWithEps(r0.modules().iterator().next().b(), 1e-7))
        .isFalse();
  }

  @Test
  void unknownKeyIsAnInputErrorListingTheValidKeys() throws Exception {
    Path config = tmp.resolve("bad.yaml");
    Files.writeString(config, "model: m\ndata: d\nlearning_rate: 3\n");
    CliRunner r = CliRunner.run("train", "--config", config.toString());
    assertThat(r.exitCode()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.errLines().get(0))
        .contains(
            "bad.yaml", "unknown key 'learning_rate'", "adapters_per_task", "grid", "pruning");
  }

  @Test
  void badGridValueIsRefusedWhenReadNamingTheKeyAndValue() throws Exception {
    Path config = tmp.resolve("bad.yaml");
    Files.writeString(config, "model: m\ndata: d\ngrid:\n  rank: [4, 0]\n  lr_ratio: [2]\n");
    CliRunner r = CliRunner.run("train", "--config", config.toString());
    assertThat(r.exitCode()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.errLines().get(0)) // refused as the file is read, before any adapter is planned
        .contains("bad.yaml: grid: rank must be an integer in [1, 4096] but was 0");
  }
}
